import type { Command } from "commander";
import { cleanup } from "../../docker/cleanup.js";
import { assertDockerReachable, dockerClient } from "../../docker/client.js";

export function registerCleanup(program: Command): void {
  program
    .command("cleanup")
    .description("remove containers left behind by airlock runs whose runner died")
    .option("--all", "remove every airlock container (also of runs still going) and the airlock network")
    .action(async (opts: { all?: boolean }) => {
      const docker = dockerClient();
      await assertDockerReachable(docker);
      const report = await cleanup(docker, { all: Boolean(opts.all), network: Boolean(opts.all) });
      const n = report.containersRemoved.length;
      process.stdout.write(`removed ${n} container${n === 1 ? "" : "s"}${n ? ": " + report.containersRemoved.join(", ") : ""}${report.networkRemoved ? "; removed network airlock" : ""}\n`);
    });
}
