/** Allocates (and touches) memory until something stops it. */
const hoard: Buffer[] = [];
for (;;) {
  hoard.push(Buffer.alloc(16 * 1024 * 1024, 1));
  if (hoard.length % 4 === 0) console.log(`holding ${hoard.length * 16} MiB`);
}
