/** Terminal styling for the CLI: colour only on a TTY and when NO_COLOR is unset. */
const useColor = (stream: NodeJS.WriteStream) => Boolean(stream.isTTY) && !process.env.NO_COLOR && process.env.TERM !== "dumb";

function wrap(open: number, close: number) {
  return (text: string, stream: NodeJS.WriteStream = process.stdout) => (useColor(stream) ? `\u001b[${open}m${text}\u001b[${close}m` : text);
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
