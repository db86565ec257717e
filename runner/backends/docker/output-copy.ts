/**
 * Bringing a Docker run's /output back to the host: its tmpfs volume (run/output-volume.ts) is
 * archived by the engine from the container that still holds it mounted — the sandbox, whose init
 * holds it until the runner is done, or the run's output keeper — and unpacked into the caller's
 * output folder within the policy's limits (run/output-tar.ts). Bounded in time: an engine that
 * stalls the archive cuts the copy, and the run says so.
 */
import { pipeline } from "node:stream/promises";
import type { EngineContainer } from "./engine/engine.js";
import { outputUnpacker, type UnpackResult } from "../../run/output-tar.js";
import type { OutputLimits } from "../../run/output-volume.js";

const COPY_TIMEOUT_MS = 120_000;

export interface CopiedOutput extends Partial<UnpackResult> {
  /** Why nothing (or not everything) was copied. */
  error?: string;
}

export async function copyOutputOut(holder: EngineContainer, dir: string, limits: OutputLimits): Promise<CopiedOutput> {
  const unpack = outputUnpacker(dir, limits, { strip: "output" });
  // Awaited below; until then a rejection must not count as unhandled.
  unpack.result.catch(() => {});
  let timer: NodeJS.Timeout | undefined;
  try {
    const archive = await holder.archive("/output");
    const copied = pipeline(archive, unpack.sink).then(() => unpack.result);
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        (archive as NodeJS.ReadableStream & { destroy?: () => void }).destroy?.();
        reject(new Error(`the engine did not hand over /output within ${COPY_TIMEOUT_MS / 1000} s`));
      }, COPY_TIMEOUT_MS);
    });
    return await Promise.race([copied, timeout]);
  } catch (err) {
    unpack.sink.destroy();
    return { error: `the agent's /output could not be copied out: ${(err as Error).message}` };
  } finally {
    clearTimeout(timer);
  }
}
