/**
 * Image builds on the terminal: one line per build, not the engine's every step. On a TTY the line
 * is redrawn in place with the step and the time so far ("building airlock/agent:… · step 7/12 ·
 * 23 s"), cleared before any other line is printed and drawn again after it; elsewhere (CI logs) a
 * build prints when it starts and when it is done, with how long it took.
 */
import { style } from "./style.js";

export interface BuildProgress {
  /** A build line from the engine or airlock (the run's "build" event). */
  line(prefix: string, text: string): void;
  /** Around any other output: clear the live line first, draw it again after. */
  around(write: () => void): void;
  /** The agent's images are ready (its run moved on): its build line ends. */
  done(prefix: string): void;
}

export function buildProgress(stream: NodeJS.WriteStream, now: () => number = Date.now): BuildProgress {
  const live = Boolean(stream.isTTY) && process.env.TERM !== "dumb";
  let current: { prefix: string; what: string; step: string; since: number } | undefined;
  let drawn = false;
  let ticker: NodeJS.Timeout | undefined;
  const render = () => {
    if (!current) return;
    const secs = Math.round((now() - current.since) / 1000);
    const text = `${current.prefix}   building ${current.what}${current.step ? ` · ${current.step}` : ""} · ${secs} s`;
    stream.write(`\r\u001b[2K${style.dim(text.slice(0, (stream.columns || 120) - 1), stream)}`);
    drawn = true;
  };
  const clear = () => {
    if (drawn) stream.write("\r\u001b[2K");
    drawn = false;
  };
  const finish = () => {
    if (!current) return;
    const secs = ((now() - current.since) / 1000).toFixed(0);
    clear();
    stream.write(style.dim(`${current.prefix}   built ${current.what} in ${secs} s\n`, stream));
    current = undefined;
    clearInterval(ticker);
  };
  return {
    line(prefix, text) {
      const t = text.trim();
      const start = /^(building|installing|pulling) (.*)$/.exec(t);
      if (start) {
        if (current && current.prefix === prefix && start[1] !== "building") {
          // A step of the build under way (a package layer, a base image).
          current.step = `${start[1]} ${start[2]!.slice(0, 60)}`;
        } else {
          finish();
          current = { prefix, what: start[2]!.replace(/\s*\(.*$/, "").slice(0, 80), step: "", since: now() };
          if (!live) stream.write(style.dim(`${prefix}   building ${current.what}\n`, stream));
          else {
            ticker = setInterval(render, 1000);
            ticker.unref();
          }
        }
      } else if (/^Successfully tagged /.test(t)) {
        finish();
        return;
      } else if (current) {
        const step = /^Step (\d+\/\d+)/.exec(t);
        if (step) current.step = `step ${step[1]}`;
        else if (/^no registry/.test(t)) current.step = "no registry: building the base image locally";
      }
      if (live) render();
    },
    done(prefix) {
      if (current?.prefix === prefix) finish();
    },
    around(write) {
      const was = drawn;
      clear();
      write();
      if (was || (live && current)) render();
    },
  };
}
