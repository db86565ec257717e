import type { Command } from "commander";
import { cleanup } from "../../docker/cleanup.js";
import { assertDockerReachable, dockerClient } from "../../docker/client.js";
import { sweepIdentities } from "../../bus/rights.js";

export function registerCleanup(program: Command): void {
  program
    .command("cleanup")
    .description("remove containers, host rules and broker identities left behind by airlock runs whose runner died")
    .option("--all", "remove every airlock container and broker identity (also of runs still going) and the airlock network")
    .action(async (opts: { all?: boolean }) => {
      const docker = dockerClient();
      await assertDockerReachable(docker);
      const report = await cleanup(docker, { all: Boolean(opts.all), network: Boolean(opts.all) });
      const n = report.containersRemoved.length;
      process.stdout.write(`removed ${n} container${n === 1 ? "" : "s"}${n ? ": " + report.containersRemoved.join(", ") : ""}${report.networkRemoved ? "; removed network airlock" : ""}\n`);
      // Broker identities of crashed runs (all of airlock's with --all).
      for (const b of await sweepIdentities({ all: Boolean(opts.all) })) {
        if (b.error) process.stderr.write(`could not sweep the ${b.broker}: ${b.error}\n`);
        else if (b.removed.length) process.stdout.write(`removed ${b.removed.length} broker identit${b.removed.length === 1 ? "y" : "ies"} on the ${b.broker}: ${b.removed.join(", ")}\n`);
      }
    });
}
