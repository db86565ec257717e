/**
 * Build contexts as in-memory tar streams, so an image build sends only the files it needs
 * (never the user's working tree), and the content hash of those files names the image.
 */
import { createHash } from "node:crypto";
import { readFile, readdir, stat } from "node:fs/promises";
import { join, relative } from "node:path";
import { pack } from "tar-stream";
import type { Readable } from "node:stream";

export interface ContextFile {
  /** Path inside the build context. */
  name: string;
  content: Buffer;
  mode?: number;
}

export async function fileEntry(name: string, hostPath: string): Promise<ContextFile> {
  const [content, info] = await Promise.all([readFile(hostPath), stat(hostPath)]);
  return { name, content, mode: info.mode & 0o777 };
}

/** Every file below `hostDir`, placed under `prefix` in the context. */
export async function directoryEntries(prefix: string, hostDir: string): Promise<ContextFile[]> {
  const entries = await readdir(hostDir, { recursive: true, withFileTypes: true });
  const files = entries.filter((e) => e.isFile()).map((e) => join(e.parentPath, e.name));
  return Promise.all(files.sort().map((f) => fileEntry(`${prefix}/${relative(hostDir, f)}`, f)));
}

export function contextHash(files: ContextFile[], extra: string[] = []): string {
  const h = createHash("sha256");
  for (const f of [...files].sort((a, b) => a.name.localeCompare(b.name))) {
    h.update(f.name)
      .update("\0")
      .update(String(f.mode ?? 0o644))
      .update("\0")
      .update(f.content)
      .update("\0");
  }
  for (const e of extra) h.update(e).update("\0");
  return h.digest("hex").slice(0, 16);
}

export function tarStream(files: ContextFile[]): Readable {
  const archive = pack();
  for (const f of files) archive.entry({ name: f.name, mode: f.mode ?? 0o644, mtime: new Date(0) }, f.content);
  archive.finalize();
  return archive as unknown as Readable;
}
