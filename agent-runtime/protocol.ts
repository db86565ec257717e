/**
 * The control channel from the agent runtime to the runner: single lines on stdout that start with
 * an ASCII record separator and "airlock:", followed by JSON. The runner strips them from the log.
 * Agent code could print such a line itself; the only effect is on its own result.
 */
export const CONTROL_PREFIX = "\u001eairlock:";

export type ControlMessage =
  | { type: "ready" }
  | { type: "result"; value: unknown }
  /** Asks the runner to bring the refusals file up to date now; it writes `id` to the answered file once it has. */
  | { type: "refusals"; id: string };

/**
 * Where the runner keeps the agent's refusals so far, read-only inside the sandbox: one JSON object
 * per line (the result's `refusals` entries), rewritten whole, and the id of the last request it answered.
 */
export const REFUSALS_DIR = "/run/airlock";
export const REFUSALS_FILE = `${REFUSALS_DIR}/refusals.jsonl`;
export const REFUSALS_ANSWERED = `${REFUSALS_DIR}/refusals.answered`;

export function encodeControl(message: ControlMessage): string {
  return CONTROL_PREFIX + JSON.stringify(message);
}

export function decodeControl(line: string): ControlMessage | undefined {
  if (!line.startsWith(CONTROL_PREFIX)) return undefined;
  try {
    const value = JSON.parse(line.slice(CONTROL_PREFIX.length)) as ControlMessage;
    return value && typeof value === "object" && typeof value.type === "string" ? value : undefined;
  } catch {
    return undefined;
  }
}
