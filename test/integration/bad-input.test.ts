/**
 * Bad input through the real CLI: each gets one clear error naming file, line and field with the
 * fix, before any container starts. Rows go into docs/SECURITY.md.
 */
import { mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { execa } from "execa";
import fc from "fast-check";
import { stringify } from "yaml";
import { afterAll, describe, expect, it } from "vitest";
import { parsePolicy, PolicyError } from "../../runner/index.js";
import { dockerClient } from "../../runner/internal.js";
import { packagePath } from "../../runner/paths.js";
import { AGENTS, tempDir } from "./helpers.js";
import { SecurityReport } from "./security/report.js";

const report = new SecurityReport("4-bad-input");
afterAll(() => report.save());
const CLI = packagePath("dist", "runner", "cli", "main.js");

/** The containers there are, but for gates and sandboxes other runners keep ready (they come and go on their own). */
async function containersCreated(): Promise<string[]> {
  const all = await dockerClient().listContainers({ all: true });
  return all.filter((c) => !/^\/airlock-(warm|pool)-/.test(c.Names[0] ?? "")).map((c) => c.Id);
}

const GOOD_AGENT = join(AGENTS, "files.ts");

const cases: [string, string, string | undefined, RegExp][] = [
  [
    "malformed YAML",
    "name: x\nnetwork:\n  allowedEndpoints: [localhost:6379\n",
    undefined,
    /bad\.yaml:4:1: YAML syntax: .*\n\s+fix:/,
  ],
  [
    "wrong type",
    'name: x\ntimeoutSeconds: "soon"\n',
    undefined,
    /bad\.yaml:2:17: timeoutSeconds: must be a number, not the text "soon"\n\s+fix: write a number without quotes/,
  ],
  [
    "unknown key (Python SDK name)",
    "name: x\nallowed_env_vars: [A]\n",
    undefined,
    /bad\.yaml:2:1: allowed_env_vars: unknown key "allowed_env_vars"\n\s+fix: did you mean env\.allow\?/,
  ],
  [
    "endpoint without a port",
    "name: x\nnetwork:\n  allowedEndpoints: [redis]\n",
    undefined,
    /bad\.yaml:3:22: network\.allowedEndpoints\[0\]: "redis" has no port\n\s+fix: write it as redis:PORT/,
  ],
  [
    "port out of range",
    "name: x\nnetwork:\n  allowedEndpoints: [localhost:70000]\n",
    undefined,
    /bad\.yaml:3:22: network\.allowedEndpoints\[0\]: port 70000 .* out of range/,
  ],
  [
    "wildcard endpoint",
    "name: x\nnetwork:\n  allowedEndpoints: ['*:9092']\n",
    undefined,
    /bad\.yaml:3:22: network\.allowedEndpoints\[0\]: "\*:9092" has a wildcard/,
  ],
  [
    "empty endpoint list",
    "name: x\nnetwork:\n  allowedEndpoints: []\n",
    undefined,
    /bad\.yaml:3:21: network\.allowedEndpoints: the list is empty/,
  ],
  ["agent file that does not exist", "name: x\n", "nope.ts", /nope\.ts: agent file not found\n\s+fix:/],
  ["agent that does not compile", "name: x\n", "broken.ts", /broken\.ts:1:\d+: .*\n\s+fix:/],
  [
    "output directory that is a file",
    "name: x\n",
    "OUTPUT-IS-FILE",
    /output directory .* exists and is a file\n\s+fix:/,
  ],
];

describe("bad input: a clear error before any container starts", () => {
  it.each(cases)("%s", async (label, policyText, agent, expected) => {
    const dir = await tempDir();
    await writeFile(join(dir, "bad.yaml"), policyText);
    await writeFile(join(dir, "broken.ts"), "export default function (: number) {}\n");
    let output = join(dir, "out");
    let agentPath = GOOD_AGENT;
    if (agent === "OUTPUT-IS-FILE") await writeFile((output = join(dir, "out-file")), "precious\n");
    else if (agent) agentPath = join(dir, agent);
    const before = await containersCreated();
    const run = await execa(
      "node",
      [CLI, "run", agentPath, "--policy", join(dir, "bad.yaml"), "--output", output, "--workdir", AGENTS],
      { reject: false, env: { NO_COLOR: "1" } },
    );
    const text = `${run.stdout}\n${run.stderr}`;
    const after = await containersCreated();
    const created = after.filter((id) => !before.includes(id));
    const held = run.exitCode === 125 && expected.test(text) && created.length === 0 && !/\n\s+at \S+ \(/.test(text);
    const first =
      text.split("\n").find((l) => /problem|error|not found|exists and is/.test(l) && !l.startsWith("✖")) ??
      text.split("\n").find((l) => l.includes(":")) ??
      "";
    expect(
      report.add(
        "bad input",
        label,
        "error with file, line, field and fix; no container",
        `${first.trim()} (exit ${run.exitCode})`,
        held,
      ),
      text,
    ).toBe(true);
  });

  it("a run file with a missing policy is reported at its line", async () => {
    const dir = await tempDir();
    await mkdir(join(dir, "x"));
    await writeFile(
      join(dir, "run.yaml"),
      `name: r\nagents:\n  a:\n    agent: ${GOOD_AGENT}\n    policy: missing.yaml\n`,
    );
    const run = await execa("node", [CLI, "up", join(dir, "run.yaml")], { reject: false, env: { NO_COLOR: "1" } });
    const held =
      run.exitCode === 2 && /run\.yaml:5:13: agents\.a\.policy: .*missing\.yaml does not exist/.test(run.stderr);
    expect(
      report.add(
        "bad input",
        "run file naming a policy that does not exist",
        "error at the line that names it",
        run.stderr.split("\n")[1]?.trim() ?? run.stderr,
        held,
      ),
      run.stderr,
    ).toBe(true);
  });

  it("fuzzing: 5,000 random policies only ever produce located PolicyErrors or valid policies", () => {
    let rejected = 0;
    let accepted = 0;
    const keys = [
      "name",
      "network",
      "allowedEndpoints",
      "allowed_endpoints",
      "env",
      "allow",
      "packages",
      "timeoutSeconds",
      "resources",
      "memory",
    ];
    const value: fc.Arbitrary<unknown> = fc.letrec((tie) => ({
      node: fc.oneof(
        { depthSize: "small" },
        fc.string(),
        fc.integer(),
        fc.boolean(),
        fc.constant(null),
        fc.array(tie("node"), { maxLength: 3 }),
        fc.dictionary(fc.constantFrom(...keys), tie("node"), { maxKeys: 4 }),
      ),
    })).node;
    let other: unknown;
    fc.assert(
      fc.property(
        fc.oneof(
          fc.string({ maxLength: 200 }),
          value.map((v) => stringify(v)),
        ),
        (text) => {
          try {
            parsePolicy(text, "fuzz.yaml");
            accepted++;
          } catch (err) {
            if (!(err instanceof PolicyError)) other = err;
            else rejected++;
          }
          return other === undefined;
        },
      ),
      { numRuns: 5000 },
    );
    expect(
      report.add(
        "bad input",
        "fuzzed policies (random text and YAML structures)",
        "only PolicyErrors (or valid policies)",
        `${rejected} rejected with located errors, ${accepted} valid, 0 other exceptions`,
        other === undefined,
      ),
    ).toBe(true);
  });
});
