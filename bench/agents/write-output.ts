/** Writes 256 MiB to /output in 1 MiB writes, synced: prints how long the writes took. */
import { closeSync, fsyncSync, openSync, writeSync } from "node:fs";

const chunk = Buffer.alloc(1 << 20, 120);
const started = process.hrtime.bigint();
const fd = openSync("/output/data.bin", "w");
for (let i = 0; i < 256; i++) writeSync(fd, chunk);
fsyncSync(fd);
closeSync(fd);
console.log(`WROTE_MS ${Number(process.hrtime.bigint() - started) / 1e6}`);
