/**
 * Section 9 of npm run bench: writing into /output. An agent's /output is a tmpfs volume of the
 * policy's size, copied to the output folder after the run (README "Output quota"); the baseline is
 * `docker run` with the output folder bind-mounted, the way a sandbox without a quota would do it.
 * Two figures: the agent's own write throughput (256 MiB in 1 MiB writes, synced), and the whole
 * run's wall time, which for airlock includes copying the 256 MiB out to the host.
 */
import { chmod, mkdir } from "node:fs/promises";
import { join } from "node:path";
import { execa } from "execa";
import { definePolicy, runAgent } from "../runner/index.js";
import { packagePath } from "../runner/paths.js";
import type { AddRow } from "./stats.js";

const AGENTS = packagePath("bench", "agents");
const MIB = 256;
const SCRIPT = `const fs=require("fs");const c=Buffer.alloc(1<<20,120);const t=process.hrtime.bigint();const fd=fs.openSync("/output/data.bin","w");for(let i=0;i<${MIB};i++)fs.writeSync(fd,c);fs.fsyncSync(fd);fs.closeSync(fd);console.log("WROTE_MS "+Number(process.hrtime.bigint()-t)/1e6)`;

interface Tools {
  addRow: AddRow;
  log: (...a: unknown[]) => void;
  reps: number;
  tmp: () => Promise<string>;
  settle: () => Promise<void>;
}

const wroteMs = (stdout: string) => Number(/WROTE_MS ([\d.]+)/.exec(stdout)?.[1] ?? NaN);

export async function outputSection(agentImage: string, t: Tools): Promise<void> {
  t.log("9. writing into /output");
  const policy = definePolicy({ name: "bench-output", network: { disabled: true } });
  const out = await t.tmp();
  const throughput = { airlock: [] as number[], plain: [] as number[] };
  const wall = { airlock: [] as number[], plain: [] as number[] };
  for (let i = -1; i < t.reps; i++) {
    await t.settle();
    let started = performance.now();
    const r = await runAgent({
      agent: join(AGENTS, "write-output.ts"),
      policy,
      outputDir: join(out, `a${i}`),
      workingDir: AGENTS,
    });
    const aWall = performance.now() - started;
    if (r.status !== "succeeded" || !r.outputFiles.includes("data.bin"))
      throw new Error(`the output bench agent did not write its file: ${r.error ?? r.stderr}`);
    await t.settle();
    const dir = join(out, `p${i}`);
    // The image's unprivileged user writes it, as the agent does.
    await mkdir(dir, { recursive: true, mode: 0o777 });
    await chmod(dir, 0o777);
    started = performance.now();
    const p = await execa("docker", [
      "run",
      "--rm",
      "-v",
      `${dir}:/output`,
      "--entrypoint",
      "node",
      agentImage,
      "-e",
      SCRIPT,
    ]);
    const pWall = performance.now() - started;
    // The first round warms caches and is not counted.
    if (i < 0) continue;
    throughput.airlock.push(MIB / (wroteMs(r.stdout) / 1000));
    throughput.plain.push(MIB / (wroteMs(p.stdout) / 1000));
    wall.airlock.push(aWall);
    wall.plain.push(pWall);
  }
  t.addRow(
    "9. output",
    `agent writes ${MIB} MiB to /output (1 MiB writes, synced): throughput`,
    throughput.airlock,
    throughput.plain,
    "MiB/s",
    { op: ">=", value: 0.9 },
  );
  t.addRow(
    "9. output",
    `whole run writing ${MIB} MiB, airlock's including the copy to the host`,
    wall.airlock,
    wall.plain,
    "ms",
  );
}
