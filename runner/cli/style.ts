/** Terminal styling for the CLI: colour only on a TTY and when NO_COLOR is unset. */
const useColor = (stream: NodeJS.WriteStream) =>
  Boolean(stream.isTTY) && !process.env.NO_COLOR && process.env.TERM !== "dumb";

function wrap(open: number, close: number) {
  return (text: string, stream: NodeJS.WriteStream = process.stdout) =>
    useColor(stream) ? `\u001b[${open}m${text}\u001b[${close}m` : text;
}

export const style = {
  bold: wrap(1, 22),
  dim: wrap(2, 22),
  red: wrap(31, 39),
  green: wrap(32, 39),
  yellow: wrap(33, 39),
  cyan: wrap(36, 39),
};

const PALETTE = [36, 35, 33, 34, 32, 91, 96, 95];
/** A stable colour per agent name, so interleaved lines are easy to tell apart. */
export function agentColor(name: string, stream: NodeJS.WriteStream = process.stdout): (text: string) => string {
  let h = 0;
  for (const c of name) h = (h * 31 + c.charCodeAt(0)) >>> 0;
  const code = PALETTE[h % PALETTE.length]!;
  return (text) => (useColor(stream) ? `\u001b[${code}m${text}\u001b[39m` : text);
}

export function formatDuration(ms: number): string {
  if (ms < 1000) return `${ms}ms`;
  if (ms < 60_000) return `${(ms / 1000).toFixed(1)}s`;
  return `${Math.floor(ms / 60_000)}m${Math.round((ms % 60_000) / 1000)}s`;
}

/**
 * Text an agent chose (its lines, file and topic names, what its errors say), made safe to print on
 * a terminal: every control character but the tab — ESC and CSI above all, which would let an agent
 * clear the screen, move the cursor over airlock's own summary, set the window title (OSC 0), write
 * the clipboard (OSC 52) or hide links (OSC 8) — and the bidirectional overrides that reorder what a
 * line seems to say, are shown as visible escapes (\x1b, \u202e). Only the terminal sees this:
 * --json, the result file and JUnit keep the bytes as they were.
 */
export function printable(text: string): string {
  // eslint-disable-next-line no-control-regex
  return text.replace(/[\u0000-\u0008\u000a-\u001f\u007f-\u009f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]/g, (c) => {
    const code = c.charCodeAt(0);
    return code <= 0xff ? `\\x${code.toString(16).padStart(2, "0")}` : `\\u${code.toString(16).padStart(4, "0")}`;
  });
}
