import type { AgentResult } from "../run/result.js";

/** The CLI's exit code for a run: the agent's own, 124 on timeout (like timeout(1)), 125 when airlock could not run it. */
export function exitCodeFor(result: AgentResult): number {
  switch (result.status) {
    case "succeeded":
      return 0;
    case "timed_out":
      return 124;
    case "cancelled":
      return 130;
    case "error":
    case "skipped":
      return 125;
    case "oom":
      return result.exitCode ?? 137;
    case "failed":
      return result.exitCode && result.exitCode > 0 ? result.exitCode : 1;
  }
}

/** A command line that cannot be run as given (the CLI prints it with the usage hint, exit 2). */
export class UsageError extends Error {}
