/**
 * A command in one of a Pod's containers, over the API's exec (WebSocket), collected: its stdout
 * (capped, or streamed to a sink), its stderr and its exit code, within a time limit.
 */
import { PassThrough, Writable } from "node:stream";
import type { V1Status } from "@kubernetes/client-node";
import { KubernetesError } from "../../errors.js";
import type { KubeClient } from "./client.js";

export interface ExecResult {
  code: number;
  stdout: Buffer;
  stderr: string;
  /** The command did not run to an exit code: the API or the kubelet failed it (its words are in `stderr`). */
  notRun?: boolean;
}

/** Which Pod, and which of its containers, a command runs in. */
export interface ExecTarget {
  client: KubeClient;
  namespace: string;
  pod: string;
  container: string;
}

export interface ExecOptions {
  timeoutMs?: number;
  /** Bytes of stdout kept (default 1 MiB); the rest is dropped. Ignored with `sink`. */
  maxStdout?: number;
  /** stdout goes here instead of into the result. */
  sink?: Writable;
}

function exitCodeOf(status: V1Status): number | undefined {
  if (status.status === "Success") return 0;
  const cause = status.details?.causes?.find((c) => c.reason === "ExitCode");
  const code = Number(cause?.message);
  return Number.isInteger(code) ? code : undefined;
}

/** execIn, tried again (up to `attempts` times, 200 ms apart) when the API or the kubelet failed the exec itself rather than the command. */
export async function execRetrying(
  target: ExecTarget,
  argv: string[],
  options: ExecOptions & { attempts?: number } = {},
): Promise<ExecResult> {
  const attempts = options.attempts ?? 3;
  for (let i = 1; ; i++) {
    const result = await execIn(target, argv, options).catch((err: Error) => ({
      code: 1,
      stdout: Buffer.alloc(0),
      stderr: err.message,
      notRun: true,
    }));
    if (!result.notRun || i >= attempts || options.sink) return result;
    await new Promise((r) => setTimeout(r, 200));
  }
}

export async function execIn(target: ExecTarget, argv: string[], options: ExecOptions = {}): Promise<ExecResult> {
  const { client, namespace, pod, container } = target;
  const max = options.maxStdout ?? 1024 * 1024;
  const chunks: Buffer[] = [];
  let kept = 0;
  const stdout =
    options.sink ??
    new Writable({
      write(chunk: Buffer, _enc, done) {
        if (kept < max) {
          chunks.push(chunk.subarray(0, max - kept));
          kept += Math.min(chunk.length, max - kept);
        }
        done();
      },
    });
  let stderr = "";
  const errSink = new PassThrough();
  errSink.on("data", (c: Buffer) => (stderr = (stderr + c.toString()).slice(-8192)));
  const timeoutMs = options.timeoutMs ?? 30_000;
  return new Promise<ExecResult>((resolve, reject) => {
    let settled = false;
    let socket: { close(): void } | undefined;
    const finish = (fn: () => void) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      fn();
    };
    const timer = setTimeout(() => {
      socket?.close();
      finish(() =>
        reject(
          new KubernetesError(
            `exec of ${argv[0]} in ${pod}/${container} did not finish within ${timeoutMs / 1000} s`,
            "check the node's health (kubectl describe pod)",
          ),
        ),
      );
    }, timeoutMs);
    client.exec
      .exec(namespace, pod, container, argv, stdout, errSink, null, false, (status) => {
        // The status arrives before the last frames are flushed into the sinks: let them drain.
        const code = exitCodeOf(status);
        setImmediate(() =>
          finish(() =>
            resolve({
              code: code ?? 1,
              stdout: Buffer.concat(chunks),
              stderr: code === undefined ? `${stderr}${status.message ?? status.reason ?? "the exec failed"}` : stderr,
              ...(code === undefined ? { notRun: true } : {}),
            }),
          ),
        );
      })
      .then((ws) => {
        socket = ws;
        ws.on("close", () =>
          setTimeout(
            () =>
              finish(() =>
                reject(
                  new KubernetesError(
                    `exec in ${pod}/${container} ended without a status${stderr ? `: ${stderr.trim()}` : ""}`,
                  ),
                ),
              ),
            50,
          ),
        );
        ws.on("error", (err: Error) =>
          finish(() =>
            reject(new KubernetesError(`exec in ${pod}/${container} failed: ${err.message}`, undefined, err)),
          ),
        );
      })
      .catch((err: unknown) => finish(() => reject(err)));
  });
}
