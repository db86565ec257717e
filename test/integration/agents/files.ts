/** Writes output files (one in a subfolder) and reports its uid and whether /workspace is writable. */
import { mkdirSync, writeFileSync } from "node:fs";
let workspaceWritable = true;
try {
  writeFileSync("/workspace/should-not-exist.txt", "x");
} catch {
  workspaceWritable = false;
}
mkdirSync("/output/nested", { recursive: true });
writeFileSync("/output/report.txt", `uid=${process.getuid?.()} gid=${process.getgid?.()}\n`);
writeFileSync("/output/nested/data.json", JSON.stringify({ workspaceWritable }));
console.log(`wrote 2 files as uid ${process.getuid?.()}; workspace writable: ${workspaceWritable}`);
console.error("a line on stderr");
process.exit(3);
