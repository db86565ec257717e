/**
 * Gate containers: started ahead of need (a small pool per runner process) with a fresh network
 * namespace on the airlock bridge, waiting for rules on stdin. Acquiring one sends the rules; the
 * gate applies them, gives up every privilege and reports ready. Starting a container on a bridge is
 * the slowest step of a run, so keeping one gate warm takes it off the critical path.
 */
import type Docker from "dockerode";
import { PassThrough, type Duplex } from "node:stream";
import { withTimeout } from "../docker/client.js";
import { GateError } from "../errors.js";

export interface StartedGate {
  container: Docker.Container;
  id: string;
  /** The agent's address on the airlock bridge. */
  ip: string;
  /** The gate's denied-connection tables, as it prints them on SIGUSR1 ("" if it does not answer). */
  report(timeoutMs?: number): Promise<string>;
  /** Stop listening to the gate. */
  detach(): void;
}

interface WarmGate {
  container: Docker.Container;
  stream: Duplex;
  output: () => string;
  ended: Promise<void>;
  /** True once the gate's stream closed (it exited, e.g. after idling, or was removed). */
  gone: () => boolean;
  ip: string;
}

export interface GateRules {
  v4: string;
  v6: string;
  holdSeconds: number;
}

async function startWarm(docker: Docker, spec: Docker.ContainerCreateOptions, networkName: string): Promise<WarmGate> {
  const container = await docker.createContainer({ ...spec, OpenStdin: true, StdinOnce: false, AttachStdin: true });
  try {
    const stream = (await container.attach({ stream: true, stdin: true, stdout: true, stderr: true, hijack: true })) as unknown as Duplex;
    const out = new PassThrough();
    let text = "";
    out.on("data", (chunk: Buffer) => (text += chunk.toString()));
    docker.modem.demuxStream(stream, out, out);
    let gone = false;
    const ended = new Promise<void>((resolve) => {
      const end = () => {
        gone = true;
        resolve();
      };
      stream.on("end", end);
      stream.on("close", end);
      stream.on("error", end);
    });
    // A warm gate must not keep the runner's process alive.
    (stream as unknown as { unref?: () => void }).unref?.();
    await container.start();
    const info = await container.inspect();
    const ip = info.NetworkSettings.Networks[networkName]?.IPAddress;
    if (!ip) throw new GateError(`the gate container has no address on network ${networkName}`);
    return { container, stream, output: () => text, ended, gone: () => gone, ip };
  } catch (err) {
    await container.remove({ force: true }).catch(() => {});
    throw err;
  }
}

/** Send the rules and wait for "ready"; reject with the gate's own words if it failed. */
async function arm(gate: WarmGate, rules: GateRules, timeoutMs: number): Promise<StartedGate> {
  const b64 = (s: string) => Buffer.from(s).toString("base64");
  gate.stream.write(`${b64(rules.v4)} ${b64(rules.v6)} ${rules.holdSeconds}\n`);
  const started = Date.now();
  while (!gate.output().includes("airlock-gate: ready")) {
    const failed = await Promise.race([gate.ended.then(() => true), new Promise<false>((r) => setTimeout(() => r(false), 5).unref())]);
    if (failed && !gate.output().includes("airlock-gate: ready")) {
      throw new GateError(`the egress gate failed before the agent started: ${gate.output().trim() || "no output"}`, "the host kernel must support iptables (nf_tables) inside containers");
    }
    if (Date.now() - started > timeoutMs) throw new GateError(`the egress gate did not report ready within ${timeoutMs} ms`, "check the engine's health (docker info)");
  }
  const from = gate.output().length;
  return {
    container: gate.container,
    id: gate.container.id,
    ip: gate.ip,
    async report(timeoutMs = 3000) {
      const start = gate.output().length;
      await withTimeout(gate.container.kill({ signal: "SIGUSR1" }), timeoutMs, "the gate did not take the signal").catch(() => {});
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const text = gate.output().slice(Math.max(start, from));
        const end = text.indexOf("airlock-gate: end of report");
        if (end >= 0) return text.slice(0, end);
        if (Date.now() > deadline) return "";
        await new Promise((r) => setTimeout(r, 5));
      }
    },
    detach: () => gate.stream.destroy(),
  };
}

export class GatePool {
  private readonly warm: Promise<WarmGate | undefined>[] = [];
  private closed = false;

  constructor(
    private readonly docker: Docker,
    private readonly spec: () => Docker.ContainerCreateOptions,
    private readonly networkName: string,
    /** Gates kept ready ahead of need. */
    private readonly size = 1,
  ) {}


  /** A gate with `rules` in force, its privileges dropped. */
  async acquire(rules: GateRules, timeoutMs = 30_000): Promise<StartedGate> {
    const pending = this.warm.shift();
    // Start the next gate at once: back to back, runs come faster than a gate starts.
    this.refill();
    const warm = pending ? await pending : undefined;
    if (warm && !warm.gone()) {
      try {
        return await arm(warm, rules, timeoutMs);
      } catch {
        // It went away while being armed (idle exit, removed from outside): use a fresh one.
        await warm.container.remove({ force: true }).catch(() => {});
      }
    }
    const fresh = await startWarm(this.docker, this.spec(), this.networkName);
    try {
      return await arm(fresh, rules, timeoutMs);
    } catch (err) {
      await fresh.container.remove({ force: true }).catch(() => {});
      throw err;
    }
  }

  /** Keep `count` gates ready (e.g. before a group of agents starts). */
  prepare(count: number): void {
    while (!this.closed && this.warm.length < count) this.warm.push(startWarm(this.docker, this.spec(), this.networkName).catch(() => undefined));
  }

  /** Top the pool up again. */
  refill(): void {
    this.prepare(this.size);
  }

  /** Resolves when the gates being started are ready (benchmarks settle on this between runs). */
  async idle(): Promise<void> {
    await Promise.all(this.warm);
  }

  /** Remove the gates kept ready. */
  async close(): Promise<void> {
    this.closed = true;
    const gates = await Promise.all(this.warm.splice(0));
    await Promise.all(gates.map((g) => g?.container.remove({ force: true }).catch(() => {})));
  }
}
