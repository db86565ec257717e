import { connect } from "node:net";
import type { Command } from "commander";
import type { AirlockError } from "../../errors.js";
import { shipped } from "../shipped.js";
import { style } from "../style.js";

type Check = { ok: boolean; label: string; detail: string; fix?: string };

export function registerDoctor(program: Command): void {
  program
    .command("doctor")
    .description("check that airlock can run here: Docker engine, images, and (with --policy) the policy's endpoints")
    .option("-p, --policy <files...>", "policy files whose endpoints to try from this host")
    .addHelpText(
      "after",
      `\nExit code: 0 when every check passes, 1 otherwise.\n\nExample:\n  airlock doctor --policy ${shipped("policies", "hello.yaml")}`,
    )
    .action(async (opts: { policy?: string[] }) => {
      // Loaded here, not at the top: `airlock --help` should not pay for the engine client.
      const [
        { assertDockerReachable, dockerClient },
        { loopbackMode },
        { imageStatus },
        { pythonImageStatus },
        { loadPolicy },
      ] = await Promise.all([
        import("../../backends/docker/engine/client.js"),
        import("../../backends/docker/gate/host-side.js"),
        import("../../images/images.js"),
        import("../../languages/python/image.js"),
        import("../../policy/index.js"),
      ]);
      const checks: Check[] = [];
      const docker = dockerClient();
      let engineUp = false;
      try {
        const v = await assertDockerReachable(docker);
        engineUp = true;
        checks.push({ ok: true, label: "docker engine", detail: `version ${v.version} (API ${v.apiVersion})` });
      } catch (err) {
        const e = err as AirlockError;
        checks.push({
          ok: false,
          label: "docker engine",
          detail: e.message.split("\n")[0]!,
          ...(e.fix ? { fix: e.fix } : {}),
        });
      }
      if (engineUp) {
        const status = await imageStatus(docker);
        if (!status.base)
          checks.push({
            ok: false,
            label: "base image",
            detail: "not present",
            fix: "the first `airlock run` builds it (or: docker pull node:20-bookworm-slim)",
          });
        else checks.push({ ok: true, label: "base image", detail: `${status.base.ref} (${status.base.source})` });
        for (const key of ["gate", "agent"] as const) {
          const s = status[key];
          if (s)
            checks.push({
              ok: s.present,
              label: `${key} image`,
              detail: s.present ? s.tag : `${s.tag} not built yet`,
              ...(s.present ? {} : { fix: "the first `airlock run` builds it (about a minute)" }),
            });
        }
        // Not needed until a Python agent runs, so not a failure when it is missing.
        const python = status.base ? await pythonImageStatus(docker, status.base.ref) : undefined;
        if (python)
          checks.push({
            ok: true,
            label: "python image",
            detail: python.present
              ? python.tag
              : `${python.tag} not built yet (the first Python agent builds it, or airlock build --python)`,
          });
      }
      const mode = loopbackMode();
      checks.push({
        ok: true,
        label: "localhost endpoints",
        detail:
          mode === "kernel"
            ? "kernel DNAT on the airlock bridge (the runner is root)"
            : "user-space forwarder in the runner (kernel DNAT needs a root runner)",
      });
      for (const file of opts.policy ?? []) {
        try {
          const policy = await loadPolicy(file);
          if (policy.network.disabled)
            checks.push({ ok: true, label: `${file}`, detail: "network disabled: nothing to reach" });
          for (const ep of policy.network.allowedEndpoints)
            checks.push(await tryEndpoint(file, ep.host, ep.port, ep.raw));
        } catch (err) {
          checks.push({ ok: false, label: file, detail: (err as Error).message.split("\n").slice(0, 3).join(" ") });
        }
      }
      for (const c of checks) {
        process.stdout.write(`${c.ok ? style.green("✔") : style.red("✖")} ${c.label}: ${c.detail}\n`);
        if (!c.ok && c.fix) process.stdout.write(`    fix: ${c.fix}\n`);
      }
      process.exitCode = checks.every((c) => c.ok) ? 0 : 1;
    });
}

async function tryEndpoint(file: string, host: string, port: number, raw: string): Promise<Check> {
  const label = `${file} → ${raw}`;
  let address = host === "localhost" ? "127.0.0.1" : host;
  if (!/^[\d.]+$/.test(address)) {
    try {
      const { hostResolver } = await import("../../gate/plan.js");
      address = (await hostResolver(host))[0]!;
    } catch {
      return {
        ok: false,
        label,
        detail: `${host} does not resolve on this host`,
        fix: "check the name, or use the broker's IPv4 address",
      };
    }
  }
  return new Promise((resolve) => {
    const started = Date.now();
    const socket = connect({ host: address, port });
    socket.setTimeout(3000, () => {
      socket.destroy();
      resolve({
        ok: false,
        label,
        detail: `no answer from ${address}:${port} within 3s`,
        fix: "is the broker running and reachable from this host?",
      });
    });
    socket.once("connect", () => {
      socket.destroy();
      resolve({ ok: true, label, detail: `reachable from this host (${address}:${port}, ${Date.now() - started}ms)` });
    });
    socket.once("error", (err: NodeJS.ErrnoException) => {
      resolve({
        ok: false,
        label,
        detail: `${err.code ?? err.message} from ${address}:${port}`,
        fix: "start the broker (for the local defaults: npx airlock brokers start)",
      });
    });
  });
}
