/**
 * What every agent run does the same way, whatever executes it (a Docker container, a Kubernetes Pod):
 *
 *   prepare (policy, workspace, bundle, env) → broker identities minted → [the backend's image, gate,
 *   start and wait] → the result, from the exit
 *
 * An execution backend (runner/backends/) extends this with its own stages; the run's id, its
 * captured output, its broker rights and the status a result gets are decided here once. Each stage
 * returns what the next one needs; what the result will say goes into the run's record
 * (run-record.ts), and what must be released is held until dispose().
 */
import type { EgressCa } from "./egress-ca.js";
import { randomBytes } from "node:crypto";
import { rm } from "node:fs/promises";
import { RunOptionsError } from "../errors.js";
import { withTimeout } from "../util/with-timeout.js";
import { kafkaPreflight, type RecentKafkaClusters } from "../bus/kafka-preflight.js";
import { openBusRights, type BrokerSweeps, type BusRights } from "../bus/rights.js";
import { busAgentToken } from "../bus/patterns.js";
import { WireTaps } from "../bus/wire-taps.js";
import { wireTapsSetting } from "../settings.js";
import { LogCapture, type StreamName } from "./logs.js";
import { prepareRun, type PreparedRun } from "./prepare.js";
import type { AgentResult, RunStatus } from "./result.js";
import { refusalSummary } from "./refusals.js";
import { RefusalFeed } from "./refusal-feed.js";
import type { DeniedConnection } from "../gate/denied.js";
import { RunRecord, type CopiedFiles } from "./run-record.js";
import type { RunOptions, RunEvent, RunRequest } from "./run-agent.js";

export const DEFAULT_GRACE_MS = 5000;
export const DEFAULT_LOG_CAP = 1024 * 1024;
/** How long a broker identity outlives the run's timeout and grace (the start and the stop). */
export const IDENTITY_MARGIN_MS = 30_000;

/** Why a run was stopped before its agent exited on its own: the status it gets, and what the user is told. */
export interface StopRequest {
  reason: RunStatus;
  why?: string;
}

/** How an agent's run ended, as a backend saw it. */
export interface RunExit {
  code: number;
  oomKilled?: boolean;
  stop?: StopRequest;
  /** The output folder went over a policy limit. */
  output?: string;
}

/** One run of one agent on some backend: execute() once, then dispose(), whatever happened. */
export interface BackendRun {
  execute(): Promise<AgentResult>;
  /** What is known so far (for a result when execute() threw). */
  partial(): Partial<AgentResult>;
  /** What this run copied into the output folder (undefined: nothing came back, e.g. it never started). */
  copiedOutput(): CopiedFiles | undefined;
  dispose(): Promise<void>;
  /** What dispose() could not do that the caller must know (a broker that did not disable an identity). */
  releaseWarnings(): string[];
}

export type { CopiedFiles };

export abstract class RunStages implements BackendRun {
  protected readonly runId: string;
  protected readonly options: RunOptions;
  protected readonly name: string;
  protected readonly outputDir: string;
  protected readonly base: AgentResult;
  protected readonly emit: (event: RunEvent) => void;
  /** Work that may finish after the result (removals); the runner waits for it before it closes. */
  protected readonly background: (work: Promise<unknown>) => void;
  private readonly brokerSweeps: BrokerSweeps;
  private readonly kafkaClusters: RecentKafkaClusters;
  private readonly egressCa: EgressCa;
  /** What the result will say, as the stages find it out. */
  protected readonly record = new RunRecord();
  /** What the shared stages created and releaseShared() gives back: the run's folder, its broker identities. */
  private readonly shared: { runDir?: string; rights?: BusRights } = {};
  /** What the captures redact: the identities' credentials, added as they are minted. */
  private readonly secrets: string[] = [];
  /** Warnings of dispose(), after the result was made. */
  private readonly released: string[] = [];
  /** What the gate refused so far, once the backend's gate is open (the backend sets it). */
  protected gateRefusedSoFar?: () => Promise<DeniedConnection[]>;
  /** The agent's refusals while it runs (/run/airlock/refusals.jsonl): the backend attaches the folder the sandbox mounts. */
  protected readonly refusalFeed = new RefusalFeed(
    {
      gate: () => this.gateRefusedSoFar?.() ?? Promise.resolve([]),
      bus: () => this.shared.rights?.denied() ?? Promise.resolve([]),
    },
    (refusals) => this.emit({ type: "refused", agent: this.name, refusals }),
  );

  constructor(request: RunRequest) {
    const { name } = request;
    this.options = request.options;
    this.name = name;
    this.outputDir = request.outputDir;
    this.base = request.base;
    this.emit = request.emit;
    this.background = request.runner.background;
    this.brokerSweeps = request.runner.brokerSweeps;
    this.kafkaClusters = request.runner.kafkaClusters;
    this.egressCa = request.runner.egressCa;
    // No "." or "/": the id becomes part of topic and subject names ({run}), where they are separators.
    this.runId = `${name
      .toLowerCase()
      .replace(/[^a-z0-9_-]/g, "-")
      .slice(0, 40)}-${randomBytes(4).toString("hex")}`;
  }

  abstract execute(): Promise<AgentResult>;

  copiedOutput(): CopiedFiles | undefined {
    return this.record.copiedOutput();
  }

  releaseWarnings(): string[] {
    return [...this.released];
  }

  partial(): Partial<AgentResult> {
    return this.record.partial();
  }

  /** A startup stage ended now (ms since the run began). */
  protected mark(stage: string): void {
    this.record.mark(stage);
  }

  protected phase(phase: Extract<RunEvent, { type: "phase" }>["phase"], message: string) {
    this.emit({ type: "phase", agent: this.name, phase, message });
  }

  protected warn(message: string): void {
    this.record.warn(message);
    this.emit({ type: "warning", agent: this.name, message });
  }

  /** What {run} stands for in the policy's broker names: the group's run id, or this run's. */
  private get busRun(): string {
    return this.options.group?.runId ?? this.runId;
  }

  protected get graceMs(): number {
    return this.options.stopGraceMs ?? DEFAULT_GRACE_MS;
  }

  /** The policy, the workspace, the bundled agent and its environment; then the backend's own checks. */
  protected async prepare(checkBackend: () => Promise<void>): Promise<PreparedRun> {
    const o = this.options;
    if (!o.agent === !o.command)
      throw new RunOptionsError("give either agent (a .ts, .js or .py file) or command (argv), not both or neither");
    if (o.image && !o.command)
      throw new RunOptionsError("image goes with command; an agent file always runs in the airlock agent image");
    if (o.signal?.aborted) throw new RunOptionsError("the run was cancelled before it started");
    this.phase("preparing", "checking policy and agent");
    // The backend's own check (is the engine there?) runs meanwhile; a bad policy is still reported first.
    let backendChecked: Promise<void> | undefined;
    const prepared = await prepareRun(
      {
        policy: o.policy,
        ...(o.agent ? { agent: o.agent } : {}),
        ...(o.runtime ? { runtime: o.runtime } : {}),
        ...(o.workingDir !== undefined ? { workingDir: o.workingDir } : {}),
        outputDir: this.outputDir,
        ...(o.env ? { env: o.env } : {}),
        ...(o.typecheck ? { typecheck: true } : {}),
        egressCa: this.egressCa,
        ...(o.upstreamCa ? { upstreamCa: o.upstreamCa } : {}),
        airlockVars: {
          AIRLOCK_AGENT_NAME: this.name,
          AIRLOCK_BUS_AGENT: busAgentToken(this.name),
          AIRLOCK_RUN_ID: this.runId,
          ...(o.group ? { AIRLOCK_GROUP: o.group.name, AIRLOCK_GROUP_RUN_ID: o.group.runId } : {}),
        },
      },
      (policy) => {
        this.record.policyLoaded(policy);
        backendChecked = checkBackend();
        // Awaited before the start; until then a rejection must not count as unhandled.
        backendChecked.catch(() => {});
      },
    );
    this.shared.runDir = prepared.runDir;
    if (wireTapsSetting())
      prepared.taps = new WireTaps(prepared.policy.bus.grants, {
        runId: this.runId,
        run: this.busRun,
        agent: busAgentToken(this.name),
      });
    this.record.workspaceKeptOut(prepared.workspace.hidden);
    if (prepared.workspace.hidden.length)
      this.phase(
        "preparing",
        `kept out of /workspace (they look like secrets; list them in workspace.include to mount them): ${prepared.workspace.hidden.join(", ")}`,
      );
    await (backendChecked ?? checkBackend());
    this.phase("images", "preparing images");
    return prepared;
  }

  /**
   * The run's broker identities, then the Kafka preflight with them. They live as long as the run can
   * (a crashed runner's are swept by name once that has passed).
   */
  protected mintRights(prepared: PreparedRun): Promise<Record<string, string>> {
    const expiresAt = Date.now() + prepared.policy.timeoutSeconds * 1000 + this.graceMs + IDENTITY_MARGIN_MS;
    const rights = this.openRights(prepared, expiresAt).then(async (bus) => {
      await this.kafkaPreflight(prepared, bus.env);
      return bus.env;
    });
    // Awaited before the start; until then a rejection must not count as unhandled.
    rights.catch(() => {});
    return rights;
  }

  /** kafkajs connects to every broker the cluster advertises: all of them must be in the policy. */
  private async kafkaPreflight(prepared: PreparedRun, busEnv: Record<string, string>): Promise<void> {
    const env = { ...prepared.env, ...busEnv };
    if (!env.KAFKA_BROKERS || prepared.policy.network.disabled) return;
    this.phase("preparing", "checking the Kafka cluster's advertised listeners against the policy");
    const sasl =
      env.KAFKA_USERNAME && env.KAFKA_PASSWORD
        ? { username: env.KAFKA_USERNAME, password: env.KAFKA_PASSWORD }
        : undefined;
    await kafkaPreflight({
      kafkaBrokers: env.KAFKA_BROKERS,
      endpoints: prepared.policy.network.allowedEndpoints,
      policySource: prepared.policy.source,
      ...(this.options.describeKafka ? { describe: this.options.describeKafka } : {}),
      ...(sasl ? { sasl } : {}),
      recent: this.kafkaClusters,
    });
  }

  private async openRights(prepared: PreparedRun, expiresAt: number): Promise<BusRights> {
    if (prepared.policy.bus.grants.length)
      this.phase(
        "preparing",
        `minting broker identities (${prepared.policy.bus.grants.map((g) => `${g.kind} at ${g.endpoint.raw}`).join(", ")})`,
      );
    const rights = await openBusRights({
      policy: prepared.policy,
      runId: this.runId,
      run: this.busRun,
      agent: busAgentToken(this.name),
      expiresAt,
      ...(prepared.taps ? { taps: prepared.taps } : {}),
      ...(this.options.requireBusRights ? { requireRights: true } : {}),
      sweeps: this.brokerSweeps,
    });
    this.shared.rights = rights;
    this.record.rightsOpened(rights);
    for (const warning of rights.warnings) this.emit({ type: "warning", agent: this.name, message: warning });
    // The agent's credentials never show in its captured output.
    this.secrets.push(...rights.secrets);
    return rights;
  }

  /** The agent's stdout and stderr captures: capped, redacted, control lines taken out. */
  protected openCaptures(intercept?: (line: string, stream: StreamName) => boolean): {
    stdout: LogCapture;
    stderr: LogCapture;
  } {
    const capBytes = this.options.logCapBytes ?? DEFAULT_LOG_CAP;
    const onLine = (stream: StreamName, line: string) => this.emit({ type: "output", agent: this.name, stream, line });
    const redact = (line: string) => this.secrets.reduce((l, s) => l.split(s).join("[redacted]"), line);
    const onControl = (message: { type: string; value?: unknown; id?: unknown }) => {
      if (message.type === "ready" && !this.record.ready) {
        this.record.ready = true;
        this.emit({ type: "ready", agent: this.name });
      } else if (message.type === "result") this.record.returnValue = message.value;
      else if (message.type === "refusals" && typeof message.id === "string") this.refusalFeed.ask(message.id);
    };
    const captures = {
      stdout: new LogCapture("stdout", capBytes, onLine, onControl, intercept, redact),
      stderr: new LogCapture("stderr", capBytes, onLine, onControl, intercept, redact),
    };
    this.record.capturing(captures);
    return captures;
  }

  /** What the brokers refused the run's identities, while they still exist. */
  protected async readBusDenials(): Promise<void> {
    await this.refusalFeed.stop();
    const rights = this.shared.rights;
    if (rights)
      this.record.brokersRefused(
        // The refusals are a report: a broker that does not answer leaves it empty, and the run's result stands.
        await withTimeout(rights.denied(), 5000, "a broker did not answer within 5 s").catch(() => []),
      );
  }

  protected finish(prepared: PreparedRun, exit: RunExit): AgentResult {
    this.phase("collecting", "collecting output");
    const status: RunStatus =
      exit.stop?.reason ?? (exit.output ? "failed" : exit.oomKilled ? "oom" : exit.code === 0 ? "succeeded" : "failed");
    const explained =
      status === "failed" && !exit.output
        ? prepared.language.explainFailure?.(this.failureText(), prepared.policy)
        : undefined;
    const stated = exit.stop?.why?.replace(/: stopping$/, "") ?? exit.output ?? explained;
    const partial = this.partial();
    // A run that failed after something was refused says so: the refusal is the likeliest cause.
    const refused =
      status !== "succeeded" && partial.refusals?.length
        ? `refused during the run: ${refusalSummary(partial.refusals)}`
        : undefined;
    const why =
      stated && refused
        ? `${stated}; ${refused}`
        : (stated ?? (refused ? `${exitWords(exit.code)}; ${refused}` : undefined));
    return { ...this.base, ...partial, status, exitCode: exit.code, ...(why ? { error: why } : {}) };
  }

  /** Where the agent's error output is (a language explains a failure from it). */
  protected failureText(): string {
    return this.record.text("stderr");
  }

  abstract dispose(): Promise<void>;

  /** The broker identities (their open connections with them) and the run's own folder. */
  protected async releaseShared(): Promise<void> {
    // No identity of the run may log in once its result is out: disabled before dispose() returns
    // (bounded; one the broker did not disable expires by name), the rest in the background.
    await this.refusalFeed.stop();
    const { rights, runDir } = this.shared;
    if (rights) {
      await withTimeout(rights.revoke(), 15_000, "a broker did not answer the revoke within 15 s").catch(
        (err: unknown) => {
          // The result must say so: the identity may still log in until it expires by its name.
          this.released.push(
            `could not disable this run's broker identities: ${(err as Error).message}; they expire by their names, and airlock cleanup removes them`,
          );
        },
      );
      this.background(withTimeout(rights.cleanup(), 30_000, "a broker did not answer the cleanup within 30 s"));
    }
    // The run's own temporary folder (bundle, hosts file): a leftover costs disk only, and holds nothing of the agent's output.
    if (runDir) await rm(runDir, { recursive: true, force: true }).catch(() => {});
  }
}

/** How an agent ended, in words, when nothing else explains it. */
function exitWords(code: number | null): string {
  return code === null ? "the agent did not finish" : `the agent exited with code ${code}`;
}
