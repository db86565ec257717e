#!/usr/bin/env node
/**
 * The airlock CLI. The library prints nothing and never exits; this file does both.
 */
import { Command, CommanderError } from "commander";
import { AirlockError } from "../errors.js";
import { registerBrokers } from "./commands/brokers.js";
import { registerBuild } from "./commands/build.js";
import { registerCleanup } from "./commands/cleanup.js";
import { registerDoctor } from "./commands/doctor.js";
import { registerInit } from "./commands/init.js";
import { registerLearn } from "./commands/learn.js";
import { registerRun, UsageError } from "./commands/run.js";
import { registerSchema } from "./commands/schema.js";
import { registerSdkRun } from "./commands/sdk-run.js";
import { registerUp } from "./commands/up.js";
import { registerValidate } from "./commands/validate.js";
import { style } from "./style.js";

const program = new Command("airlock")
  .description(
    "Run AI agents in Docker containers whose network egress is locked to the broker endpoints a policy permits.",
  )
  .version("0.1.0")
  .showHelpAfterError()
  .exitOverride();

registerInit(program);
registerRun(program);
registerUp(program);
registerLearn(program);
registerValidate(program);
registerSchema(program);
registerBuild(program);
registerCleanup(program);
registerDoctor(program);
registerBrokers(program);
registerSdkRun(program);

try {
  await program.parseAsync(process.argv);
} catch (err) {
  if (err instanceof CommanderError) {
    process.exitCode = err.exitCode === 0 ? 0 : 2;
  } else if (err instanceof AirlockError || err instanceof UsageError) {
    process.stderr.write(`${style.red("airlock:", process.stderr)} ${err.message}\n`);
    process.exitCode = 2;
  } else {
    process.stderr.write(
      `${style.red("airlock: internal error:", process.stderr)} ${(err as Error)?.stack ?? String(err)}\n`,
    );
    process.exitCode = 70;
  }
}
