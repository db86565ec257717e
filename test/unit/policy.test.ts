import { mkdtemp, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { definePolicy, loadPolicy, parsePolicy, PolicyError, type InputIssue } from "../../runner/index.js";

function issuesOf(text: string): InputIssue[] {
  try {
    parsePolicy(text, "policy.yaml");
  } catch (err) {
    expect(err).toBeInstanceOf(PolicyError);
    return (err as PolicyError).issues;
  }
  throw new Error("expected the policy to be rejected");
}

function only(text: string): InputIssue {
  const issues = issuesOf(text);
  expect(issues).toHaveLength(1);
  return issues[0]!;
}

describe("valid policies", () => {
  it("applies safe defaults and defaults network.disabled to true without endpoints", () => {
    const p = parsePolicy("name: minimal\n");
    expect(p.network).toEqual({ disabled: true, allowedEndpoints: [], https: [] });
    expect(p.env).toEqual({ allow: [], set: {} });
    expect(p.packages).toEqual({ npm: [], pip: [] });
    expect(p.timeoutSeconds).toBe(300);
    expect(p.resources).toEqual({
      memoryBytes: 512 * 1024 * 1024,
      cpus: 1,
      pids: 256,
      outputBytes: 1024 ** 3,
      outputFiles: 10_000,
    });
  });

  it("parses endpoints, env, packages and resources", () => {
    const p = parsePolicy(`
name: full
network:
  allowedEndpoints: [localhost:6379, 127.0.0.1:5672, 10.0.0.5:9092, Kafka-1.Example.com.:9093, localhost:6379]
env:
  allow: [REDIS_URL, REDIS_URL]
  set: { MODE: test }
packages: ["ioredis@5.9.2", "@scope/pkg@^1.2.0"]
timeoutSeconds: 30
resources: { memory: 2g, cpus: 0.5, pids: 64, output: 10m }
`);
    expect(p.network.disabled).toBe(false);
    expect(p.network.allowedEndpoints.map((e) => [e.host, e.port, e.kind])).toEqual([
      ["localhost", 6379, "loopback"],
      ["127.0.0.1", 5672, "loopback"],
      ["10.0.0.5", 9092, "ipv4"],
      ["kafka-1.example.com", 9093, "dns"],
    ]);
    expect(p.env).toEqual({ allow: ["REDIS_URL"], set: { MODE: "test" } });
    expect(p.packages.npm.map((x) => [x.name, x.version])).toEqual([
      ["ioredis", "5.9.2"],
      ["@scope/pkg", "^1.2.0"],
    ]);
    expect(p.resources).toEqual({
      memoryBytes: 2 * 1024 ** 3,
      cpus: 0.5,
      pids: 64,
      outputBytes: 10 * 1024 ** 2,
      outputFiles: 10_000,
    });
  });

  it("validates objects given in code exactly like files", () => {
    expect(definePolicy({ name: "inline", network: { allowedEndpoints: ["localhost:6379"] } }).network.disabled).toBe(
      false,
    );
    expect(() => definePolicy({ name: "inline", network: { allowedEndpoints: ["localhost"] } } as never)).toThrow(
      /has no port/,
    );
  });

  it("every policy in the repo is valid and points editors at the schema", async () => {
    const { readdir, readFile } = await import("node:fs/promises");
    const dir = join(import.meta.dirname, "../../policies");
    const files = (await readdir(dir, { recursive: true })).filter((f) => f.endsWith(".yaml"));
    expect(files.length).toBeGreaterThan(0);
    for (const f of files) {
      await expect(loadPolicy(join(dir, f))).resolves.toBeTruthy();
      expect((await readFile(join(dir, f), "utf8")).split("\n")[0]).toMatch(
        /^# yaml-language-server: \$schema=(\.\.\/)*\.?\/?policy\.schema\.json$/,
      );
    }
  });
});

describe("errors name the file, line, column, field and fix", () => {
  it("locates an endpoint without a port", () => {
    const issue = only("name: x\nnetwork:\n  allowedEndpoints:\n    - localhost:6379\n    - redis\n");
    expect(issue).toMatchObject({ file: "policy.yaml", field: "network.allowedEndpoints[1]", line: 5, column: 7 });
    expect(issue.message).toContain("no port");
    expect(issue.fix).toContain("redis:6379");
  });

  it.each([
    ["localhost:0", "out of range"],
    ["localhost:65536", "out of range"],
    ["localhost:http", "not a number"],
    ["*:6379", "wildcard"],
    ["*.example.com:9092", "wildcard"],
    ["redis://localhost:6379", "is a URL"],
    ["[::1]:6379", "IPv6"],
    ["300.1.1.1:80", "not a valid IPv4"],
    ["0.0.0.0:6379", "names no host"],
    [":6379", "no host"],
    ["bad_host!:6379", "not a valid host name"],
  ])("rejects endpoint %s", (endpoint, message) => {
    const issue = only(`name: x\nnetwork:\n  allowedEndpoints: ["${endpoint}"]\n`);
    expect(issue.field).toBe("network.allowedEndpoints[0]");
    expect(issue.message).toContain(message);
    expect(issue.fix).toBeTruthy();
  });

  it("rejects an empty endpoint list", () => {
    const issue = only("name: x\nnetwork:\n  allowedEndpoints: []\n");
    expect(issue).toMatchObject({ field: "network.allowedEndpoints", line: 3 });
    expect(issue.message).toContain("empty");
  });

  it("rejects disabled: true together with endpoints, and disabled: false without any", () => {
    expect(only("name: x\nnetwork:\n  disabled: true\n  allowedEndpoints: [localhost:1]\n")).toMatchObject({
      field: "network.disabled",
      line: 3,
    });
    expect(only("name: x\nnetwork:\n  disabled: false\n").message).toContain("nothing would be reachable");
  });

  it("gives did-you-mean hints for the Python SDK's snake_case names", () => {
    const issues = issuesOf(
      "name: x\nnetwork:\n  allowed_endpoints: [localhost:1]\nallowed_env_vars: [A]\npip_packages: [redis]\ntimeout_seconds: 5\n",
    );
    expect(issues.map((i) => [i.field, i.line, i.fix])).toEqual([
      ["network.allowed_endpoints", 3, "did you mean network.allowedEndpoints?"],
      ["allowed_env_vars", 4, "did you mean env.allow?"],
      ["pip_packages", 5, expect.stringContaining("did you mean packages")],
      ["timeout_seconds", 6, "did you mean timeoutSeconds?"],
    ]);
  });

  it("suggests the nearest key for typos and lists the allowed keys otherwise", () => {
    expect(only("name: x\nenv:\n  alow: [A]\n").fix).toBe("did you mean env.allow?");
    expect(only("name: x\nresources:\n  gpu: 1\n").fix).toContain(
      "allowed keys under resources: memory, cpus, pids, output",
    );
  });

  it("explains wrong types with what was found", () => {
    expect(only('name: x\ntimeoutSeconds: "60"\n')).toMatchObject({
      field: "timeoutSeconds",
      line: 2,
      message: 'must be a number, not the text "60"',
      fix: "write a number without quotes",
    });
    expect(only("name: x\npackages: ioredis@5\n").message).toBe(
      'must be a list of npm packages (- ioredis@5.9.2), or npm: [...] and pip: [...] for each language, not the text "ioredis@5"',
    );
    expect(only("name: x\nenv:\n  allow: REDIS_URL\n").field).toBe("env.allow");
  });

  it("rejects packages without a version or from outside the registry", () => {
    expect(only("name: x\npackages: [ioredis]\n")).toMatchObject({
      field: "packages[0]",
      message: 'package "ioredis" has no version',
    });
    expect(only('name: x\npackages: ["x@git+https://example.com/x.git"]\n').message).toContain(
      "not a registry version",
    );
    expect(only('name: x\npackages: ["x@file:../x"]\n').message).toContain("not a registry version");
    expect(only('name: x\npackages: ["Not Valid@1"]\n').message).toContain("not a valid npm package name");
  });

  it("rejects bad limits", () => {
    expect(only("name: x\ntimeoutSeconds: 0\n").message).toBe("must be more than 0");
    expect(only("name: x\ntimeoutSeconds: 1.5\n").field).toBe("timeoutSeconds");
    expect(only("name: x\nresources: { memory: 1m }\n").message).toContain("below the 32m minimum");
    expect(only("name: x\nresources: { memory: lots }\n").message).toContain("not a memory size");
    expect(only("name: x\nresources: { pids: 2 }\n").message).toBe("must be at least 16");
  });

  it("rejects reserved and invalid env names, and a name both allowed and set", () => {
    expect(only("name: x\nenv:\n  allow: [AIRLOCK_RUN_ID]\n").message).toContain("set by airlock");
    expect(only("name: x\nenv:\n  allow: [1BAD]\n").field).toBe("env.allow[0]");
    expect(only("name: x\nenv:\n  allow: [A]\n  set: { A: b }\n").field).toBe("env.set.A");
  });

  it("reports YAML syntax errors, duplicate keys, empty files and non-mappings", () => {
    expect(only("name: x\nnetwork:\n  allowedEndpoints: [a:1\n").message).toMatch(/^YAML syntax/);
    expect(only("name: x\nname: y\n")).toMatchObject({ line: 2, fix: "remove one of the two entries" });
    expect(only("").message).toBe("the file is empty");
    expect(only("# only a comment\n").message).toBe("the file is empty");
    expect(only("- a\n- b\n").message).toContain("must be a mapping");
    expect(only("name: x\n\tnetwork: {}\n").message).toMatch(/YAML syntax/);
  });

  it("requires a name", () => {
    expect(only("network:\n  disabled: true\n")).toMatchObject({ field: "name", message: "is required (string)" });
  });

  it("names a missing file", async () => {
    await expect(loadPolicy("/nonexistent/policy.yaml")).rejects.toThrow(/policy\.yaml: 1 problem\n.*file not found/);
  });

  it("formats every problem into the error message", async () => {
    const dir = await mkdtemp(join(tmpdir(), "airlock-policy-"));
    const file = join(dir, "p.yaml");
    await writeFile(file, "name: x\nnetwork:\n  allowedEndpoints: [redis]\npip_packages: [redis]\n");
    const err = await loadPolicy(file).catch((e: unknown) => e as PolicyError);
    expect(err).toBeInstanceOf(PolicyError);
    expect((err as PolicyError).message).toContain(`${file}:3:22: network.allowedEndpoints[0]: "redis" has no port`);
    expect((err as PolicyError).message).toContain(`${file}:4:1: pip_packages: unknown key "pip_packages"`);
  });
});
