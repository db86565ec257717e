/**
 * An optional type check of a TypeScript agent with the user's own TypeScript (the one their project
 * resolves from the agent's folder), before any container starts: `airlock run --typecheck`, or
 * `typecheck: true` for an agent of a run file. The agent file (and what it imports) is checked with
 * the settings of the tsconfig.json above it, if there is one, else strict NodeNext settings. tsc runs in a child process
 * bounded in time, memory and output, and anything but a clean pass is an error of the run.
 */
import { execa } from "execa";
import { createRequire } from "node:module";
import { randomBytes } from "node:crypto";
import { access, rm, writeFile } from "node:fs/promises";
import { basename, dirname, join, relative, resolve } from "node:path";
import { AgentSourceError, RunOptionsError } from "../../errors.js";

const TIMEOUT_MS = 120_000;
const HEAP_MB = 2048;

async function findUp(from: string, name: string): Promise<string | undefined> {
  for (let dir = from; ; dir = dirname(dir)) {
    const candidate = join(dir, name);
    if (
      await access(candidate).then(
        () => true,
        () => false,
      )
    )
      return candidate;
    if (dirname(dir) === dir) return undefined;
  }
}

export async function typecheckAgent(agentFile: string): Promise<void> {
  const agent = resolve(agentFile);
  let tscBin: string;
  let version = "?";
  try {
    const require = createRequire(join(dirname(agent), "noop.js"));
    const pkg = require.resolve("typescript/package.json");
    version = (require(pkg) as { version: string }).version;
    tscBin = join(dirname(pkg), "bin", "tsc");
  } catch {
    throw new RunOptionsError(
      `the type check of ${relative(process.cwd(), agent)} needs TypeScript in its project, and none resolves from ${relative(process.cwd(), dirname(agent)) || "."}`,
      "npm install --save-dev typescript, or run without --typecheck (typecheck: false)",
    );
  }
  const tsconfig = await findUp(dirname(agent), "tsconfig.json");
  // The project's settings, for this file: a config of our own beside the project's (so that its
  // type roots and paths resolve as the project's do), extending it (its include may not list the
  // agent) and naming only the agent; removed once tsc is done.
  const scratch = tsconfig
    ? join(dirname(tsconfig), `.tsconfig.airlock-${randomBytes(4).toString("hex")}.json`)
    : undefined;
  if (scratch)
    await writeFile(
      scratch,
      JSON.stringify({
        extends: `./${basename(tsconfig!)}`,
        compilerOptions: { noEmit: true },
        files: [agent],
        include: [],
      }),
    );
  const args = scratch
    ? ["-p", scratch, "--pretty", "false"]
    : [
        "--noEmit",
        "--pretty",
        "false",
        "--strict",
        "--target",
        "es2022",
        "--module",
        "nodenext",
        "--moduleResolution",
        "nodenext",
        "--skipLibCheck",
        agent,
      ];
  const run = await execa(process.execPath, [`--max-old-space-size=${HEAP_MB}`, tscBin, ...args], {
    reject: false,
    timeout: TIMEOUT_MS,
    maxBuffer: 4 * 1024 * 1024,
    cwd: tsconfig ? dirname(tsconfig) : dirname(agent),
  }).finally(() => (scratch ? rm(scratch, { force: true }) : undefined));
  if (run.exitCode === 0) return;
  const base = tsconfig ? dirname(tsconfig) : dirname(agent);
  // tsc names files relative to its working folder (ours: the project's).
  const errors = run.stdout.split("\n").filter((l) => /^\S.*\(\d+,\d+\): error TS\d+:/.test(l));
  const first = /^(.*)\((\d+),(\d+)\): error (TS\d+): (.*)$/.exec(errors[0] ?? "");
  if (!first) {
    const why = run.timedOut
      ? `it ran past ${TIMEOUT_MS / 1000} s`
      : run.signal
        ? `it was killed (${run.signal})`
        : (run.stdout || run.stderr).trim().split("\n")[0]?.slice(0, 300) || `exit ${run.exitCode}`;
    throw new AgentSourceError(
      relative(process.cwd(), agent),
      `the type check did not finish: ${why}`,
      "fix it, or run without --typecheck",
    );
  }
  const where = `${relative(process.cwd(), resolve(base, first[1]!)) || first[1]}:${first[2]}:${first[3]}`;
  const more = errors.length > 1 ? ` (and ${errors.length - 1} more)` : "";
  throw new AgentSourceError(
    where,
    `${first[4]}: ${first[5]}${more}`,
    `fix the type error (TypeScript ${version}, your project's${tsconfig ? `, ${relative(process.cwd(), tsconfig)}` : ""}); the agent did not start`,
  );
}
