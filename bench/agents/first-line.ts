/** Its first line of code prints the time, so the runner can see when agent code began. */
console.log(`FIRST_LINE ${Date.now()}`);
