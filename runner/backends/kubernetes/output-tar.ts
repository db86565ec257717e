/**
 * The agent's /output, brought back from the Pod into the caller's output folder: a tar stream
 * (made by the keeper's tar), unpacked here with the care its content deserves, since the agent
 * chose every name in it. Only folders and regular files are written, below the output folder,
 * within the policy's byte and entry limits; links, devices and anything that would land outside
 * are skipped and named.
 */
import { createWriteStream } from "node:fs";
import { mkdir } from "node:fs/promises";
import { dirname, join, normalize, sep } from "node:path";
import { pipeline } from "node:stream/promises";
import { PassThrough, type Writable } from "node:stream";
import * as tar from "tar-stream";

export interface UnpackResult {
  files: number;
  bytes: number;
  /** Entries not written, with why. */
  skipped: { path: string; reason: string }[];
  /** The output went over a policy limit (what the result's error says). */
  problem?: string;
}

/** A path from the archive as a safe relative path, or undefined. */
export function safeRelative(name: string): string | undefined {
  const cleaned = normalize(name.replace(/^(\.\/)+/, "")).replace(/\/+$/, "");
  if (!cleaned || cleaned === "." || cleaned.startsWith("/") || cleaned.split(/[\\/]/).includes("..")) return undefined;
  return cleaned;
}

/** A writable that takes the tar and unpacks it into `dir` (resolved when done via `result`). */
export function outputUnpacker(dir: string, limits: { bytes: number; entries: number }): { sink: Writable; result: Promise<UnpackResult> } {
  const extract = tar.extract();
  const out: UnpackResult = { files: 0, bytes: 0, skipped: [] };
  let entries = 0;
  extract.on("entry", (header, stream, next) => {
    const skip = (reason: string) => {
      if (out.skipped.length < 100) out.skipped.push({ path: header.name, reason });
      stream.resume();
      stream.on("end", next);
    };
    if (/^(\.\/?)+$/.test(header.name)) {
      // The folder itself.
      stream.resume();
      stream.on("end", next);
      return;
    }
    const rel = safeRelative(header.name);
    if (rel === undefined) return skip("a path outside the output folder");
    if (++entries > limits.entries) {
      out.problem ??= `the output has more than ${limits.entries} entries (resources.outputFiles)`;
      return skip("over the entry limit");
    }
    const target = join(dir, rel);
    if (!target.startsWith(dir + sep)) return skip("a path outside the output folder");
    if (header.type === "directory") {
      stream.resume();
      void mkdir(target, { recursive: true, mode: 0o755 })
        .catch(() => {})
        .then(() => next());
      return;
    }
    if (header.type !== "file") return skip(`a ${header.type ?? "special"} entry (only files and folders are copied)`);
    const size = header.size ?? 0;
    if (out.bytes + size > limits.bytes) {
      out.problem ??= `the output is larger than ${limits.bytes} bytes (resources.outputBytes)`;
      return skip("over the byte limit");
    }
    out.bytes += size;
    out.files++;
    void mkdir(dirname(target), { recursive: true, mode: 0o755 })
      .then(() => pipeline(stream, createWriteStream(target, { mode: 0o644 })))
      .then(() => next(), (err: Error) => {
        out.skipped.push({ path: header.name, reason: `could not be written: ${err.message}` });
        stream.resume();
        next();
      });
  });
  const result = new Promise<UnpackResult>((resolve, reject) => {
    extract.on("finish", () => resolve(out));
    extract.on("error", reject);
  });
  // exec writes into a Node stream; tar-stream's extractor is a streamx one.
  const sink = new PassThrough();
  sink.pipe(extract as unknown as NodeJS.WritableStream);
  sink.on("close", () => {
    if (!sink.writableFinished) extract.destroy(new Error("the copy was cut off"));
  });
  return { sink, result };
}
