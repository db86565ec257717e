/**
 * What a run's result will say, written down by the stages as they find it out. A run can fail at
 * any stage, and its result then says what was known by then (`partial()`), so this is the one
 * place a run accumulates: each fact is told once, by the stage that learnt it, and no stage reads
 * one back to decide what to do (what flows from one stage to the next is passed as a value).
 */
import type { BusDenial } from "../bus/kind.js";
import type { DeniedConnection } from "../gate/denied.js";
import type { Policy } from "../policy/index.js";
import type { LogCapture } from "./logs.js";
import { allRefusals } from "./refusals.js";
import type { AgentResult, RunStartup } from "./result.js";

/** The files a run's /output brought back, and its entries that were not files or folders. */
export interface CopiedFiles {
  files: string[];
  bytes: number;
  special: { path: string; kind: string }[];
}

/** What the run's broker identities add to its result. */
export interface RightsRecord {
  warnings: string[];
  identities: { kind: string; endpoint: string; name: string }[];
}

export class RunRecord {
  private policy?: Pick<Policy, "name" | "source">;
  private image?: string;
  private workspaceHidden: string[] = [];
  private captures?: { stdout: LogCapture; stderr: LogCapture };
  private rights?: RightsRecord;
  private busDenied: BusDenial[] = [];
  private denied: DeniedConnection[] = [];
  private copied?: CopiedFiles;
  private readonly warnings: string[] = [];
  /** Readiness and the return value, as the agent's control lines said them. */
  ready = false;
  returnValue: unknown;
  /** How the agent's sandbox came to be and when each startup stage ended. */
  readonly startup: RunStartup = { mode: "cold", how: "new container", stages: {} };
  private readonly t0 = performance.now();

  policyLoaded(policy: Pick<Policy, "name" | "source">): void {
    this.policy = policy;
  }

  /** The image the agent runs in, as the result names it. */
  imageIs(label: string): void {
    this.image = label;
  }

  workspaceKeptOut(hidden: string[]): void {
    this.workspaceHidden = hidden;
  }

  capturing(captures: { stdout: LogCapture; stderr: LogCapture }): void {
    this.captures = captures;
  }

  rightsOpened(rights: RightsRecord): void {
    this.rights = rights;
  }

  brokersRefused(denials: BusDenial[]): void {
    this.busDenied = denials;
  }

  gateDenied(denied: DeniedConnection[]): void {
    this.denied = denied;
  }

  outputCopied(copied: CopiedFiles): void {
    this.copied = copied;
  }

  warn(message: string): void {
    this.warnings.push(message);
  }

  /** A startup stage ended now (ms since the run began). */
  mark(stage: string): void {
    this.startup.stages[stage] = Math.round(performance.now() - this.t0);
  }

  /** What /output brought back (undefined: nothing came back, e.g. the agent never started). */
  copiedOutput(): CopiedFiles | undefined {
    return this.copied;
  }

  /** The agent's output where a language looks for the cause of a failure (stderr, or the one stream). */
  text(stream: "stdout" | "stderr"): string {
    return this.captures?.[stream].text() ?? "";
  }

  /** What is known so far, as result fields. */
  partial(): Partial<AgentResult> {
    const warnings = [...(this.rights?.warnings ?? []), ...this.warnings];
    return {
      policy: this.policy ? { name: this.policy.name, source: this.policy.source } : null,
      ...(this.image ? { image: this.image } : {}),
      stdout: this.text("stdout"),
      stderr: this.text("stderr"),
      ready: this.ready,
      refusals: allRefusals(this.denied, this.busDenied, new Date().toISOString()),
      denied: this.denied,
      ...(this.workspaceHidden.length ? { workspaceHidden: this.workspaceHidden } : {}),
      ...(warnings.length ? { warnings } : {}),
      ...(this.rights?.identities.length ? { busIdentities: this.rights.identities } : {}),
      ...(this.busDenied.length ? { busDenied: this.busDenied } : {}),
      ...(this.returnValue !== undefined ? { returnValue: this.returnValue } : {}),
      ...(Object.keys(this.startup.stages).length
        ? { startup: { ...this.startup, stages: { ...this.startup.stages } } }
        : {}),
    };
  }
}
