/**
 * The agent's /output, brought back from its sandbox into the caller's output folder: a tar stream
 * (Docker's archive of the output volume, or the Kubernetes keeper's tar), unpacked here with the
 * care its content deserves, since the agent chose every name in it. Only folders and regular files
 * are written, below the output folder, within the policy's byte and entry limits; links, devices and
 * anything that would land outside are skipped and named. What an earlier run left in the host's
 * folder is never followed either: a link (or a file) where a folder of the path should be is left
 * alone and the entry skipped, and files are opened with O_NOFOLLOW.
 */
import { constants, createWriteStream } from "node:fs";
import { lstat, mkdir } from "node:fs/promises";
import { join, normalize, sep } from "node:path";
import { pipeline } from "node:stream/promises";
import { PassThrough, type Writable } from "node:stream";
import * as tar from "tar-stream";
import { OUTPUT_BLOCK, outputQuotaBytes } from "./output-volume.js";

export interface UnpackResult {
  files: number;
  bytes: number;
  /** The files written, relative to the output folder (this run's output: nothing an earlier run left). */
  written: string[];
  /** Entries of the agent's that are not files or folders (links, FIFOs, ...): named, never written. */
  special: { path: string; kind: string }[];
  /** Entries not written, with why (the first 100). */
  skipped: { path: string; reason: string }[];
  /** The output went over a policy limit (what the result's error says). */
  problem?: string;
  /** /output was full (no room for another page, or every entry used): writes past the limit were refused. */
  full?: boolean;
}

export interface UnpackLimits {
  bytes: number;
  entries: number;
}

/** A path from the archive as a safe relative path, or undefined. */
export function safeRelative(name: string): string | undefined {
  const cleaned = normalize(name.replace(/^(\.\/)+/, "")).replace(/\/+$/, "");
  if (!cleaned || cleaned === "." || cleaned.startsWith("/") || cleaned.split(/[\\/]/).includes("..")) return undefined;
  return cleaned;
}

const WRITE_FLAGS = constants.O_WRONLY | constants.O_CREAT | constants.O_TRUNC | constants.O_NOFOLLOW;

/**
 * Make every folder between `dir` and `rel`'s parent, refusing to pass through anything that is not
 * a real folder (a link an earlier run left, a file). Returns why not, or undefined.
 */
async function ensureFolders(dir: string, parts: string[]): Promise<string | undefined> {
  let at = dir;
  for (const part of parts) {
    at = join(at, part);
    // Missing is the answer (the folder is made below); anything else fails at mkdir.
    const info = await lstat(at).catch(() => undefined);
    if (info?.isDirectory()) continue;
    if (info) return `${info.isSymbolicLink() ? "a link" : "a file"} in the way in the host's output folder`;
    try {
      await mkdir(at, { mode: 0o755 });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== "EEXIST") throw err;
      if (!(await lstat(at)).isDirectory()) return "a link or file in the way in the host's output folder";
    }
  }
  return undefined;
}

/**
 * A writable that takes the tar and unpacks it into `dir` (resolved when done via `result`).
 * `strip` drops a leading folder every name carries (Docker's archive of /output names "output/...").
 */
export function outputUnpacker(
  dir: string,
  limits: UnpackLimits,
  options: { strip?: string } = {},
): { sink: Writable; result: Promise<UnpackResult> } {
  const extract = tar.extract();
  const out: UnpackResult = { files: 0, bytes: 0, written: [], special: [], skipped: [] };
  let entries = 0;
  // What the host's disk spends on data, counted as it would be: whole blocks per file, a block per
  // folder (limited to the policy's bytes). Each entry's inode and name come on top: bounded by the
  // entry limit, at most ~520 bytes each (a 256-byte inode, a name of up to 255 bytes).
  let blocks = 0;
  // What the sandbox's tmpfs held: pages of file data, and entries of any kind.
  let pages = 0;
  let seen = 0;
  const allowed =
    limits.bytes >= 1024 * 1024 ? `${(limits.bytes / 1024 / 1024).toFixed(1)} MiB` : `${limits.bytes} bytes`;
  const overBytes = () => `output limit exceeded: more than ${allowed} on the host's disk (resources.output)`;
  extract.on("entry", (header, stream, next) => {
    const skip = (reason: string) => {
      if (out.skipped.length < 100) out.skipped.push({ path: header.name, reason });
      stream.resume();
      stream.on("end", next);
    };
    let name = header.name;
    if (options.strip) {
      if (name === options.strip || name === `${options.strip}/`) name = ".";
      else if (name.startsWith(`${options.strip}/`)) name = name.slice(options.strip.length + 1);
      else return skip("a path outside the output folder");
    }
    if (/^(\.\/?)*$/.test(name)) {
      // The folder itself.
      stream.resume();
      stream.on("end", next);
      return;
    }
    seen++;
    if (header.type === "file") pages += Math.ceil((header.size ?? 0) / OUTPUT_BLOCK);
    const rel = safeRelative(name);
    if (rel === undefined) return skip("a path outside the output folder");
    if (++entries > limits.entries) {
      out.problem ??= `output limit exceeded: more than ${limits.entries} entries (resources.outputFiles)`;
      return skip("over the entry limit");
    }
    const target = join(dir, rel);
    if (!target.startsWith(dir + sep)) return skip("a path outside the output folder");
    const parts = rel.split(sep);
    if (header.type === "directory") {
      if ((blocks += OUTPUT_BLOCK) > outputQuotaBytes(limits)) {
        out.problem ??= overBytes();
        return skip("over the byte limit");
      }
      stream.resume();
      void ensureFolders(dir, parts)
        .then(
          (why) => why && out.skipped.length < 100 && out.skipped.push({ path: header.name, reason: why }),
          () => {},
        )
        .then(() => next());
      return;
    }
    if (header.type !== "file") {
      out.special.push({
        path: rel,
        kind:
          header.type === "symlink"
            ? "symlink"
            : header.type === "fifo"
              ? "fifo"
              : header.type === "character-device" || header.type === "block-device"
                ? "device"
                : "other",
      });
      return skip(`a ${header.type ?? "special"} entry (only files and folders are copied)`);
    }
    const size = header.size ?? 0;
    const cost = Math.ceil(size / OUTPUT_BLOCK) * OUTPUT_BLOCK;
    if (blocks + cost > outputQuotaBytes(limits)) {
      out.problem ??= overBytes();
      return skip("over the byte limit");
    }
    blocks += cost;
    out.bytes += size;
    void (async () => {
      const why = await ensureFolders(dir, parts.slice(0, -1));
      if (why) return skip(why);
      // Missing is the answer (the file is written below).
      const there = await lstat(target).catch(() => undefined);
      if (there && !there.isFile())
        return skip(
          `${there.isSymbolicLink() ? "a link" : "a folder or special file"} in the way in the host's output folder`,
        );
      await pipeline(stream, createWriteStream(target, { flags: WRITE_FLAGS as unknown as string, mode: 0o644 }));
      out.files++;
      out.written.push(rel);
      next();
    })().catch((err: Error) => {
      out.skipped.push({ path: header.name, reason: `could not be written: ${err.message}` });
      stream.resume();
      next();
    });
  });
  const result = new Promise<UnpackResult>((resolve, reject) => {
    extract.on("finish", () => {
      if ((pages + 1) * OUTPUT_BLOCK > outputQuotaBytes(limits) || seen >= limits.entries) out.full = true;
      if (out.full)
        out.problem ??= `output limit reached: /output was full (resources.output allows ${allowed}, resources.outputFiles ${limits.entries} entries), so writes past it failed`;
      resolve(out);
    });
    extract.on("error", reject);
  });
  // The source is a Node stream; tar-stream's extractor is a streamx one.
  const sink = new PassThrough();
  sink.pipe(extract as unknown as NodeJS.WritableStream);
  sink.on("close", () => {
    if (!sink.writableFinished) extract.destroy(new Error("the copy was cut off"));
  });
  return { sink, result };
}

/** The entries the copy skipped, the first few by name. */
export function skippedNote(skipped: { path: string; reason: string }[]): string {
  const named = skipped.slice(0, 5).map((s) => `${s.path} (${s.reason})`);
  return `not copied from /output: ${named.join(", ")}${skipped.length > 5 ? `, and ${skipped.length >= 100 ? "more than 95" : skipped.length - 5} more` : ""}`;
}
