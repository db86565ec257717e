/** airlock init: templates from the shipped examples, written so that the folder stands on its own. */
import { existsSync, readFileSync } from "node:fs";
import { mkdtemp, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { initTemplate, listTemplates } from "../../runner/init/templates.js";
import { loadRunFile } from "../../runner/group/run-file.js";
import { RunOptionsError } from "../../runner/errors.js";

describe("airlock init", () => {
  it("offers hello, every example with a run file, and the Python ones by a python- name", async () => {
    const names = (await listTemplates()).map((t) => t.name);
    expect(names).toEqual(
      expect.arrayContaining([
        "hello",
        "redis-pubsub",
        "rabbitmq-work-queue",
        "kafka-streaming",
        "python-redis-pubsub",
      ]),
    );
  });

  it("writes a run file whose policies and agents are beside it, and that loads as written", async () => {
    const dir = join(await mkdtemp(join(tmpdir(), "airlock-init-")), "pair");
    const done = await initTemplate("redis-pubsub", { dir });
    expect(done.next).toMatch(/npx airlock up .*pair\/run\.yaml$/);
    const run = await loadRunFile(join(dir, "run.yaml"));
    for (const a of run.agents) {
      expect(a.policy.startsWith(dir)).toBe(true);
      expect(existsSync(a.agent!)).toBe(true);
    }
    expect(readFileSync(join(dir, "run.yaml"), "utf8")).toMatch(/\$schema=\S*policies\/run\.schema\.json/);
  });

  it("never overwrites: an existing file stops it before anything is written, unless --force", async () => {
    const dir = join(await mkdtemp(join(tmpdir(), "airlock-init-")), "hello");
    await initTemplate("hello", { dir });
    await writeFile(join(dir, "agent.ts"), "// mine\n");
    await expect(initTemplate("hello", { dir })).rejects.toThrow(/already exist[\s\S]*--force/);
    expect(readFileSync(join(dir, "agent.ts"), "utf8")).toBe("// mine\n");
    await initTemplate("hello", { dir, force: true });
    expect(readFileSync(join(dir, "agent.ts"), "utf8")).not.toBe("// mine\n");
    await expect(initTemplate("nope")).rejects.toBeInstanceOf(RunOptionsError);
  });
});
