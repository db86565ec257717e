import { existsSync, readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

/** The airlock package's root folder (where Dockerfile.agent, images/ and dist/ are), from source or from dist/. */
export const PACKAGE_ROOT = findRoot(dirname(fileURLToPath(import.meta.url)));

function findRoot(start: string): string {
  for (let dir = start; ; dir = dirname(dir)) {
    const manifest = join(dir, "package.json");
    if (existsSync(manifest) && (JSON.parse(readFileSync(manifest, "utf8")) as { name?: string }).name === "airlock")
      return dir;
    if (dirname(dir) === dir) throw new Error(`cannot find airlock's package.json above ${start}`);
  }
}

export function packagePath(...parts: string[]): string {
  return join(PACKAGE_ROOT, ...parts);
}
