/**
 * The in-container gate, for images airlock built itself (a sandbox: backends/docker/sandbox/): the
 * container's entrypoint is airlock's init (images/agent/airlock-init.sh), which reads the rules on
 * stdin, loads them in the container's own namespace and drops NET_ADMIN. This side sends the rules,
 * opens the host side for the container's address while the init loads them, reads the rules back
 * from outside once the init says they are applied, and only then sends the start line (the agent's
 * command line and variables). After the agent exits, a root
 * runner reads the denied tables from the kernel itself; others take the init's report, tagged
 * with a nonce the agent never sees.
 */
import { randomBytes } from "node:crypto";
import type { Duplex } from "node:stream";
import type { EngineContainer } from "../engine/engine.js";
import { GateError } from "../../../errors.js";
import type { EgressGate, SandboxStart } from "./egress-gate.js";
import { parseDeniedReport, type DeniedConnection } from "../../../gate/denied.js";
import type { HostSide } from "./host-side.js";
import { canInspectFromHost, hostInterfaceOf, readDeniedTables, type Backend } from "./netns.js";
import { DONE_LINE, INIT_FAILED_EXIT, INIT_LINE_PREFIX, INIT_WORDS, initRulesLine } from "../../../gate/protocol.js";
import type { ExpectedRules, Verifier } from "./verify.js";

const APPLY_TIMEOUT_MS = 30_000;

export interface InitGateInput {
  rules: ExpectedRules;
  user: { uid: number; gid: number };
  /** The airlock bridge network's name. */
  networkName: string;
  hostSide: HostSide;
  verifier: Verifier;
  /** Startup stages as they end ("applied": the init loaded the rules; "verified": read back and equal). */
  onMark?: (stage: string) => void;
}

export class InitEgressGate implements EgressGate {
  readonly network;
  readonly usesStdin = true;
  readonly exited: Promise<number>;
  private readonly nonce = randomBytes(16).toString("hex");
  private readonly prefix = `${INIT_LINE_PREFIX}${this.nonce} `;
  private readonly reportLines: string[] = [];
  private reportEnded = false;
  private resolveExit!: (code: number) => void;
  private resolveApplied!: (backend: Backend) => void;
  private readonly applied = new Promise<Backend>((r) => (this.resolveApplied = r));
  private stdio?: Duplex;
  private pid = 0;

  constructor(private readonly input: InitGateInput) {
    this.network = { mode: "gated" as const, network: input.networkName };
    this.exited = new Promise<number>((r) => (this.resolveExit = r));
  }

  private readonly streamsEnded = new Set<string>();
  private resolveOutput!: () => void;
  readonly outputComplete = new Promise<void>((r) => (this.resolveOutput = r));

  readonly intercept = (line: string, stream: "stdout" | "stderr" = "stdout"): boolean => {
    if (!line.startsWith(this.prefix)) return false;
    const rest = line.slice(this.prefix.length);
    const [word, value] = rest.split(" ");
    if (stream === "stderr") {
      // The init's end mark on stderr: every line the agent wrote there came before it.
      if (word === INIT_WORDS.end) this.streamEnded("stderr");
      return true;
    }
    if (word === INIT_WORDS.end) this.streamEnded("stdout");
    if (word === INIT_WORDS.applied) this.resolveApplied(value === "nft" ? "nft" : "legacy");
    else if (word === INIT_WORDS.end && /^\d+$/.test(value ?? "") && !this.reportEnded) {
      this.reportEnded = true;
      this.resolveExit(Number(value));
    } else if (!this.reportEnded) this.reportLines.push(rest);
    return true;
  };

  private streamEnded(stream: string): void {
    this.streamsEnded.add(stream);
    if (this.streamsEnded.size === 2) this.resolveOutput();
  }

  /** The line of rules, for tests. */
  rulesLine(): string {
    return initRulesLine(this.input.rules, this.input.user, this.nonce);
  }

  beforeStart(stdio: Duplex): void {
    this.stdio = stdio;
    stdio.write(this.rulesLine());
  }

  async open(
    container: EngineContainer,
    stdio: Duplex,
    stopped: Promise<unknown>,
    start?: SandboxStart,
  ): Promise<void> {
    if (!start) throw new GateError("a sandbox needs its start line", "this is a bug in airlock: report it");
    if (!this.stdio) this.beforeStart(stdio);
    const ended = stopped.then(
      () => "stopped" as const,
      () => "stopped" as const,
    );
    const state = start.state ?? (await container.inspect());
    this.pid = state.pid;
    const address = state.networks[this.input.networkName];
    if (!address?.ip)
      throw new GateError(
        "the agent's container has no address on the airlock network",
        "check the engine's health (docker info)",
      );
    const hostInterface = canInspectFromHost() && this.pid ? await hostInterfaceOf(this.pid) : undefined;
    const checked = (async () => {
      let timer: NodeJS.Timeout | undefined;
      const timeout = new Promise<"timeout">((r) => (timer = setTimeout(() => r("timeout"), APPLY_TIMEOUT_MS)));
      const backend = await Promise.race([this.applied, ended, timeout]).finally(() => clearTimeout(timer));
      if (backend === "timeout")
        throw new GateError(
          `the gate's init did not load its rules within ${APPLY_TIMEOUT_MS / 1000} s`,
          "check the engine's health (docker info)",
        );
      if (backend === "stopped") return false;
      this.input.onMark?.("applied");
      await this.input.verifier.verify({ pid: this.pid, containerId: container.id, backend }, this.input.rules);
      this.input.onMark?.("verified");
      return true;
    })();
    const [, verified] = await Promise.all([
      this.input.hostSide.allow({ ip: address.ip, mac: address.mac, ...(hostInterface ? { hostInterface } : {}) }),
      checked,
    ]);
    // The init exited before it applied its rules: collect() reports its own words.
    if (verified) stdio.write(await start.line());
  }

  async collect(exit: { code: number; stderr: string }): Promise<DeniedConnection[]> {
    const failure = InitEgressGate.failure(exit.code, exit.stderr, this.reportEnded);
    if (failure) throw failure;
    if (!this.reportEnded) return [];
    try {
      const report = canInspectFromHost() && this.pid ? await readDeniedTables(this.pid) : this.reportLines.join("\n");
      return [...parseDeniedReport(report), ...this.input.hostSide.denials()];
    } finally {
      this.stdio?.write(DONE_LINE);
    }
  }

  async refusedSoFar(): Promise<DeniedConnection[]> {
    // The init prints its tables only once the agent exited: mid-run, the kernel's are read from the host or not at all.
    const tables = canInspectFromHost() && this.pid ? await readDeniedTables(this.pid).catch(() => "") : "";
    return [...parseDeniedReport(tables), ...this.input.hostSide.denials()];
  }

  async dispose(): Promise<void> {
    await this.input.hostSide.close();
  }

  /** The init's own error when it could not apply the rules, or undefined when it did. */
  static failure(exitCode: number, stderr: string, agentRan = false): GateError | undefined {
    if (exitCode !== INIT_FAILED_EXIT || agentRan) return undefined;
    const lines = stderr.split("\n");
    if (!lines.some((l) => l.startsWith("airlock-init:"))) return undefined;
    const said = lines.filter((l) => l.startsWith("airlock-init:") || /iptables|ip6tables|setpriv/i.test(l)).join("; ");
    return new GateError(
      `the egress gate failed before the agent started: ${said}`,
      "the host kernel must support iptables (nf_tables) inside containers",
    );
  }
}
