/**
 * Gate containers, for images airlock did not build: a container of airlock's gate image owns a
 * network namespace on the airlock bridge, waits for rules on stdin, applies them, gives up every
 * privilege and says ready; the agent's container then joins that namespace. Starting a container
 * on a bridge is the slowest step of a run, so a small pool keeps gates started ahead of need.
 *
 * A gate kept ready does not keep the runner's process alive (its stream is unref'd); a gate that a
 * run holds does.
 */
import type Docker from "dockerode";
import { PassThrough, type Duplex } from "node:stream";
import { withTimeout } from "../../../util/with-timeout.js";
import { GateError } from "../../../errors.js";
import { GATE_WORDS, gateRulesLine } from "../../../gate/protocol.js";
import { startReplacingLost } from "../engine/lost-start.js";

export interface StartedGate {
  container: Docker.Container;
  id: string;
  /** The agent's address and MAC on the airlock bridge (the gate's, whose namespace it joins). */
  ip: string;
  mac: string;
  /** The gate's process as the host sees it. */
  pid: number;
  /** The gate's denied-connection tables, as it prints them on SIGUSR1 ("" if it does not answer). */
  report(timeoutMs?: number): Promise<string>;
  /** Stop listening to the gate. */
  detach(): void;
}

/** A gate taken from a pool while it waited ready (GatePool.takeReady), to be armed by acquire(). */
export interface TakenGate {
  readonly pool: GatePool;
  readonly gate: Promise<WarmGate | undefined>;
}

interface WarmGate {
  container: Docker.Container;
  stream: Duplex & { ref?: () => void; unref?: () => void };
  output: () => string;
  /** Resolves when `text` appears in the gate's output, or with false once the gate's stream closed. */
  waitFor(text: string, from: number): Promise<boolean>;
  gone: () => boolean;
  ip: string;
  mac: string;
  pid: number;
}

export interface GateRules {
  v4: string;
  v6: string;
  holdSeconds: number;
}

/** A gate container started and waiting for its rules (one whose process the engine lost before its start is replaced once). */
function startWarm(docker: Docker, spec: Docker.ContainerCreateOptions, networkName: string): Promise<WarmGate> {
  return startReplacingLost(() => startWarmOnce(docker, spec, networkName));
}

async function startWarmOnce(
  docker: Docker,
  spec: Docker.ContainerCreateOptions,
  networkName: string,
): Promise<WarmGate> {
  const container = await docker.createContainer({ ...spec, OpenStdin: true, StdinOnce: false, AttachStdin: true });
  try {
    const stream = (await container.attach({
      stream: true,
      stdin: true,
      stdout: true,
      stderr: true,
      hijack: true,
    })) as unknown as WarmGate["stream"];
    const out = new PassThrough();
    let text = "";
    const waiters = new Set<() => void>();
    out.on("data", (chunk: Buffer) => {
      text += chunk.toString();
      waiters.forEach((w) => {
        w();
      });
    });
    docker.modem.demuxStream(stream, out, out);
    let gone = false;
    const end = () => {
      gone = true;
      waiters.forEach((w) => {
        w();
      });
    };
    stream.on("end", end);
    stream.on("close", end);
    stream.on("error", end);
    const waitFor = (wanted: string, from: number) =>
      new Promise<boolean>((resolve) => {
        const check = () => {
          if (text.indexOf(wanted, from) >= 0) done(true);
          else if (gone) done(false);
        };
        const done = (v: boolean) => {
          waiters.delete(check);
          resolve(v);
        };
        waiters.add(check);
        check();
      });
    // A gate kept ready must not keep the runner's process alive; acquire() refs it again.
    stream.unref?.();
    await container.start();
    const info = await container.inspect();
    const net = info.NetworkSettings.Networks[networkName];
    if (!net?.IPAddress) throw new GateError(`the gate container has no address on network ${networkName}`);
    return {
      container,
      stream,
      output: () => text,
      waitFor,
      gone: () => gone,
      ip: net.IPAddress,
      mac: net.MacAddress,
      pid: info.State.Pid,
    };
  } catch (err) {
    // The start failed (that error is thrown); a leftover is labelled and the orphan sweep removes it.
    await container.remove({ force: true, v: true }).catch(() => {});
    throw err;
  }
}

/** Send the rules and wait for "ready"; reject with the gate's own words if it failed. */
async function arm(gate: WarmGate, rules: GateRules, timeoutMs: number): Promise<StartedGate> {
  gate.stream.ref?.();
  gate.stream.write(gateRulesLine(rules, rules.holdSeconds));
  // Not ready in time is the answer (undefined), handled below.
  const ready = await withTimeout(gate.waitFor(GATE_WORDS.ready, 0), timeoutMs, "timeout").catch(() => undefined);
  if (ready === undefined)
    throw new GateError(
      `the egress gate did not report ready within ${timeoutMs} ms`,
      "check the engine's health (docker info)",
    );
  if (!ready)
    throw new GateError(
      `the egress gate failed before the agent started: ${gate.output().trim() || "no output"}`,
      "the host kernel must support iptables (nf_tables) inside containers",
    );
  const from = gate.output().length;
  return {
    container: gate.container,
    id: gate.container.id,
    ip: gate.ip,
    mac: gate.mac,
    pid: gate.pid,
    async report(timeoutMs = 3000) {
      const start = Math.max(from, gate.output().length);
      await withTimeout(
        gate.container.kill({ signal: "SIGUSR1" }),
        timeoutMs,
        "the gate did not take the signal",
        // The gate is being given up either way; removal follows.
      ).catch(() => {});
      const ended = await withTimeout(gate.waitFor(GATE_WORDS.reportEnd, start), timeoutMs, "timeout").catch(
        () => false,
      );
      if (!ended) return "";
      const text = gate.output().slice(start);
      return text.slice(0, text.indexOf(GATE_WORDS.reportEnd));
    },
    detach: () => gate.stream.destroy(),
  };
}

/** How long a gate may take to put a run's rules in force. */
const ARM_TIMEOUT_MS = 30_000;

export class GatePool {
  private readonly warm: Promise<WarmGate | undefined>[] = [];
  /** The gates of `warm` that are started and waiting, by their promise. */
  private readonly ready = new Map<Promise<WarmGate | undefined>, WarmGate>();
  private closed = false;

  constructor(
    private readonly docker: Docker,
    private readonly spec: () => Docker.ContainerCreateOptions,
    private readonly networkName: string,
    /** Gates kept ready ahead of need. */
    private readonly size = 1,
  ) {}

  /**
   * A gate with `rules` in force, its privileges dropped: the one `taken` earlier (takeReady), whose
   * taker tops the pool up itself once runs stop starting, or the next in the pool.
   */
  async acquire(rules: GateRules, taken?: TakenGate): Promise<StartedGate> {
    const pending = taken?.pool === this ? taken.gate : this.warm.shift();
    if (pending) this.ready.delete(pending);
    // Start the next gate at once: back to back, runs come faster than a gate starts.
    if (!taken) this.refill();
    const warm = pending ? await pending : undefined;
    if (warm && !warm.gone()) {
      try {
        return await arm(warm, rules, ARM_TIMEOUT_MS);
      } catch {
        // It went away while being armed (idle exit, removed from outside): use a fresh one.
        await warm.container.remove({ force: true, v: true }).catch(() => {});
      }
    }
    const fresh = await startWarm(this.docker, this.spec(), this.networkName);
    try {
      return await arm(fresh, rules, ARM_TIMEOUT_MS);
    } catch (err) {
      // Arming failed (that error is thrown); a leftover is labelled and the orphan sweep removes it.
      await fresh.container.remove({ force: true, v: true }).catch(() => {});
      throw err;
    }
  }

  /** Whether a gate is started and waiting right now. */
  readyNow(): boolean {
    return [...this.ready.values()].some((g) => !g.gone());
  }

  /** A gate started and waiting right now, taken out of the pool at once (so no other run counts on it), or undefined. */
  takeReady(): TakenGate | undefined {
    for (const [pending, gate] of this.ready) {
      if (gate.gone()) continue;
      this.ready.delete(pending);
      this.warm.splice(this.warm.indexOf(pending), 1);
      return { pool: this, gate: pending };
    }
    return undefined;
  }

  /** Keep `count` gates ready (e.g. before a group of agents starts). */
  prepare(count: number): void {
    while (!this.closed && this.warm.length < count) {
      // A gate that did not start is not kept ready; the run that needs one starts its own.
      const gate = startWarm(this.docker, this.spec(), this.networkName).catch(() => undefined);
      void gate.then((g) => {
        if (g && this.warm.includes(gate)) this.ready.set(gate, g);
      });
      this.warm.push(gate);
    }
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
    this.ready.clear();
    const gates = await Promise.all(this.warm.splice(0));
    // Closing: a gate that resists removal is labelled and the orphan sweep removes it.
    await Promise.all(gates.map((g) => g?.container.remove({ force: true, v: true }).catch(() => {})));
  }
}
