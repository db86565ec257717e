/**
 * The control channel from the agent runtime to the runner: single lines on stdout that start with
 * an ASCII record separator and "airlock:", followed by JSON. The runner strips them from the log.
 * Agent code could print such a line itself; the only effect is on its own result.
 */
export const CONTROL_PREFIX = "\u001eairlock:";

export type ControlMessage = { type: "ready" } | { type: "result"; value: unknown };

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
