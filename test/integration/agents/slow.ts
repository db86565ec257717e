/** Writes a partial result, then works "forever", ignoring SIGTERM like a stuck agent would. */
import { writeFileSync } from "node:fs";
process.on("SIGTERM", () => console.log("got SIGTERM, ignoring it"));
writeFileSync("/output/partial.txt", "written before the timeout\n");
console.log("partial output written; now busy");
setInterval(() => {}, 1000);
