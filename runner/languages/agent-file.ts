/** The agent file a run names: it exists and is a file (each language then checks its content). */
import { stat } from "node:fs/promises";
import { AgentSourceError } from "../errors.js";

export async function checkAgentFile(file: string): Promise<void> {
  let info: import("node:fs").Stats;
  try {
    info = await stat(file);
  } catch {
    throw new AgentSourceError(
      file,
      "agent file not found",
      "pass the path of a .ts, .js or .py file, relative to the current folder",
    );
  }
  if (!info.isFile())
    throw new AgentSourceError(file, "is not a file", "pass the agent's .ts, .js or .py file, not a folder");
}
