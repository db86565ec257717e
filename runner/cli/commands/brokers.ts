import { spawn } from "node:child_process";
import type { Command } from "commander";
import { packagePath } from "../../paths.js";
import { BUS_KIND_NAMES } from "../../bus/names.js";
import { UsageError } from "./run.js";
import { brokersStateDir } from "../../settings.js";

/** Every broker kind a policy can name has a local broker. */
const BROKERS: readonly string[] = BUS_KIND_NAMES;

export function registerBrokers(program: Command): void {
  program
    .command("brokers")
    .description(
      "start, stop or check the local brokers on this machine's loopback (Redis, RabbitMQ, Kafka, NATS, MQTT)",
    )
    .argument("<action>", "start | stop | status")
    .argument("[brokers...]", `any of ${BROKERS.join(", ")} (default: all)`)
    .addHelpText(
      "after",
      `
A broker that already answers is left alone; a missing one is installed from Debian packages (as root)
and started on 127.0.0.1 (Kafka from its jars on Maven Central). stop stops only what this command
started. Data and logs go to airlock's state folder (AIRLOCK_STATE_DIR).

Example:
  airlock brokers start redis`,
    )
    .action(async (action: string, brokers: string[]) => {
      if (!["start", "stop", "status"].includes(action))
        throw new UsageError(`brokers ${action}: use start, stop or status`);
      const unknown = brokers.filter((b) => !BROKERS.includes(b));
      if (unknown.length) throw new UsageError(`unknown broker ${unknown.join(", ")}: use ${BROKERS.join(", ")}`);
      const child = spawn("bash", [packagePath("scripts", "brokers.sh"), action, ...brokers], {
        stdio: "inherit",
        env: {
          ...process.env,
          AIRLOCK_BROKERS_STATE: brokersStateDir(),
        },
      });
      process.exitCode = await new Promise<number>((resolve) => child.on("exit", (code) => resolve(code ?? 1)));
    });
}
