/**
 * A file airlock ships (an example, a policy), named as the user can type it from where they stand:
 * `examples/…` in a checkout, `node_modules/airlock/examples/…` in a project that installed it. Help
 * texts name their examples through this, so every path they print exists.
 */
import { relative } from "node:path";
import { packagePath } from "../paths.js";

export function shipped(...parts: string[]): string {
  return relative(process.cwd(), packagePath(...parts));
}
