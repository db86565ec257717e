/**
 * The languages airlock runs agents in, and which one a run uses: what the run asks for (runAgent's
 * runtime, a run file's runtime:), else what its policy says (runtime:), else the agent file's
 * extension (.py is Python); a command with only pip packages in its policy runs in the Python
 * image; everything else in the Node one.
 */
import { AgentSourceError, RunOptionsError } from "../errors.js";
import type { Policy } from "../policy/index.js";
import type { AgentLanguage } from "./language.js";
import type { LanguageName } from "./names.js";
import { nodeLanguage } from "./node/index.js";
import { pythonLanguage } from "./python/index.js";

export const LANGUAGES: Record<LanguageName, AgentLanguage> = { node: nodeLanguage, python: pythonLanguage };

export function languageOfFile(file: string): AgentLanguage | undefined {
  return Object.values(LANGUAGES).find((l) => l.extensions.some((ext) => file.endsWith(ext)));
}

export function chooseLanguage(input: {
  agent?: string | undefined;
  runtime?: LanguageName | undefined;
  policy: Policy;
}): AgentLanguage {
  const { agent, runtime, policy } = input;
  const byFile = agent ? languageOfFile(agent) : undefined;
  const asked = runtime ?? policy.runtime;
  if (asked) {
    if (byFile && byFile.name !== asked) {
      const who = runtime ? "the run asks for" : `the policy (${policy.source}) says runtime:`;
      throw new RunOptionsError(
        `${agent} is a ${byFile.title} file, but ${who} ${asked}`,
        runtime
          ? `ask for runtime ${byFile.name}, or pass a ${LANGUAGES[asked].extensions[0]} agent`
          : `remove runtime: from the policy (the file's extension decides), or set it to ${byFile.name}`,
      );
    }
    return LANGUAGES[asked];
  }
  if (agent && !byFile) {
    throw new AgentSourceError(
      agent,
      "is not a TypeScript, JavaScript or Python file",
      "agents are .ts, .js or .py files; set runtime: (node or python) for another name, or pass command: [...] instead of agent",
    );
  }
  if (byFile) return byFile;
  // A command: the Python image when the policy installs only Python packages.
  return policy.packages.pip.length > 0 && policy.packages.npm.length === 0 ? LANGUAGES.python : LANGUAGES.node;
}
