/**
 * Whether a sandbox's runtime on standby can run this agent, or its command line must start afresh:
 * a command (not the language's runtime), no runtime on standby, or a variable the runtime reads only
 * as it starts (NODE_OPTIONS, PYTHONPATH, LD_PRELOAD, ...) that the standby did not start with.
 */
import type { StartMode } from "../../../gate/protocol.js";
import type { AgentLanguage } from "../../../languages/language.js";
import { STANDBY_ENV } from "./shape.js";

export function startMode(language: AgentLanguage, argv: readonly string[], env: Record<string, string>): StartMode {
  const standby = language.standby;
  if (!standby) return "exec";
  const runtime = language.runtimeArgv;
  if (argv.length !== runtime.length + 1 || runtime.some((word, i) => argv[i] !== word)) return "exec";
  const fresh = Object.entries(env).some(
    ([name, value]) => standby.startupVariables.test(name) && STANDBY_ENV[name] !== value,
  );
  return fresh ? "exec" : "standby";
}
