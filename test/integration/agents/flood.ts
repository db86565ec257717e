/** Writes to stdout and stderr as fast as it can, without end. */
const line = `${"x".repeat(1023)}\n`;
const block = line.repeat(1024);
function pump(): void {
  while (process.stdout.write(block)) process.stderr.write(line);
  process.stdout.once("drain", pump);
}
pump();
