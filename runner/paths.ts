import { fileURLToPath } from "node:url";
import { join } from "node:path";

/** The airlock package's root folder (where Dockerfile.agent, images/ and dist/ are). */
export const PACKAGE_ROOT = fileURLToPath(new URL("../../", import.meta.url));

export function packagePath(...parts: string[]): string {
  return join(PACKAGE_ROOT, ...parts);
}
