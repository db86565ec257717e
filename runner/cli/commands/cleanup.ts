import type { Command } from "commander";
import { addBackendFlags, backendFlag, runnerBackendOptions, type BackendFlags } from "../backend-flag.js";

export function registerCleanup(program: Command): void {
  addBackendFlags(program.command("cleanup"))
    .description(
      "remove containers (or Pods), host rules and broker identities left behind by airlock runs whose runner died",
    )
    .option(
      "--all",
      "remove every airlock container (or Pod) and broker identity, also of runs still going, and the airlock network",
    )
    .action(async (opts: { all?: boolean } & BackendFlags) => {
      const [{ assertDockerReachable }, { sweepIdentities }, { createRunner }] = await Promise.all([
        import("../../backends/docker/engine/client.js"),
        import("../../bus/rights.js"),
        import("../../runner.js"),
      ]);
      const runner = createRunner({ gatePoolSize: 0, reapOrphans: false, ...runnerBackendOptions(opts) });
      const backend = await runner.backend(backendFlag(opts));
      if (backend.name === "docker") await assertDockerReachable(runner.docker);
      const report = await backend.cleanup({ all: Boolean(opts.all) });
      const n = report.removed.length;
      const what = backend.name === "docker" ? "container" : "object";
      process.stdout.write(
        `removed ${n} ${what}${n === 1 ? "" : "s"}${n ? `: ${report.removed.map((r) => (backend.name === "docker" && r.kind === "container" ? r.name : `${r.kind} ${r.name}`)).join(", ")}` : ""}\n`,
      );
      // Broker identities of crashed runs (all of airlock's with --all).
      for (const b of await sweepIdentities({ all: Boolean(opts.all) })) {
        if (b.error) process.stderr.write(`could not sweep the ${b.broker}: ${b.error}\n`);
        else if (b.removed.length)
          process.stdout.write(
            `removed ${b.removed.length} broker identit${b.removed.length === 1 ? "y" : "ies"} on the ${b.broker}: ${b.removed.join(", ")}\n`,
          );
      }
      await runner.close();
    });
}
