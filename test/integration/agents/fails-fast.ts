/** Fails before it is ready. */
console.error("giving up at once");
process.exit(2);
