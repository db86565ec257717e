import { style } from "./style.js";

/**
 * Ctrl-C (or SIGTERM) once: abort the controller, so agents get SIGTERM and then SIGKILL and every
 * container is removed; twice: stop waiting. Returns the signal and a function that stops listening.
 */
export function onInterrupt(what: string): { signal: AbortSignal; dispose: () => void } {
  const controller = new AbortController();
  let interrupts = 0;
  const handler = () => {
    interrupts++;
    if (interrupts === 1) {
      process.stderr.write(style.yellow(`\nstopping ${what} (Ctrl-C again to stop waiting)\n`, process.stderr));
      controller.abort();
    } else process.exit(130);
  };
  process.on("SIGINT", handler);
  process.on("SIGTERM", handler);
  return {
    signal: controller.signal,
    dispose: () => {
      process.off("SIGINT", handler);
      process.off("SIGTERM", handler);
    },
  };
}
