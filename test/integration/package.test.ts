/**
 * The package as a user gets it: `npm pack`, the tarball installed into an empty project outside
 * the repository (no access to the repository's node_modules), then an agent run from there through
 * the CLI and through runAgent(), and the agent's types checked with tsc. A green run inside the
 * repository would hide a missing runtime dependency.
 */
import { cp, mkdir, readFile, symlink, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { execa } from "execa";
import { beforeAll, describe, expect, it } from "vitest";
import { packagePath } from "../../runner/paths.js";
import { tempDir } from "./helpers.js";

let project: string;

const AGENT = `import { defineAgent } from "airlock/agent";

export default defineAgent(async (ctx) => {
  const redis = await ctx.bus.redis();
  const pong: string = await redis.ping();
  await ctx.output.write("pong.txt", pong + "\\n");
  ctx.log("redis said", pong);
  return { pong };
});
`;

const POLICY = `# yaml-language-server: $schema=./node_modules/airlock/policies/policy.schema.json
name: from-package
network:
  allowedEndpoints: [localhost:6379]
bus:
  redis: {}                 # REDIS_URL: an identity of this run's own (PING, nothing else)
timeoutSeconds: 60
`;

const PY_AGENT = `import airlock

@airlock.agent
def main(ctx: airlock.Context):
    pong = ctx.bus.redis().ping()
    ctx.output.write("pong.txt", f"{pong}\\n")
    ctx.log("python redis said", pong)
    return {"pong": pong}
`;

const PY_POLICY = `name: py-from-package
network:
  allowedEndpoints: [localhost:6379]
bus:
  redis: {}
packages:
  pip: requirements.txt
timeoutSeconds: 60
`;

const SCRIPT = `import { runAgent, containersRemoved } from "airlock";
const result = await runAgent({ agent: "agent.ts", policy: "policy.yaml", outputDir: "out-script" });
console.log("STATUS " + result.status + " " + JSON.stringify(result.returnValue));
console.log("RETURNED " + Date.now());
`;

const TSCONFIG = JSON.stringify({
  compilerOptions: {
    module: "NodeNext",
    moduleResolution: "NodeNext",
    target: "ES2022",
    strict: true,
    noEmit: true,
    types: ["node"],
    skipLibCheck: false,
  },
  include: ["agent.ts", "script.ts"],
});

let installLog = "";

beforeAll(async () => {
  const packs = await tempDir("airlock-pack-");
  const packed = await execa("npm", ["pack", "--pack-destination", packs, "--loglevel=error"], { cwd: packagePath() });
  const tarball = join(packs, packed.stdout.trim().split("\n").pop()!);
  project = join(tmpdir(), `airlock-user-project-${Date.now()}`);
  await mkdir(project, { recursive: true });
  await writeFile(
    join(project, "package.json"),
    JSON.stringify({ name: "user-project", private: true, type: "module" }),
  );
  // --prefer-online: every package's metadata fresh from the registry, so a dependency published minutes
  // ago is never resolved against a cached list of its own dependency's versions that predates it.
  const installed = await execa(
    "npm",
    ["install", "--no-audit", "--no-fund", "--prefer-online", tarball, "@types/node@20"],
    {
      cwd: project,
      all: true,
    },
  );
  installLog = installed.all ?? "";
  await writeFile(join(project, "agent.ts"), AGENT);
  await writeFile(join(project, "policy.yaml"), POLICY);
  await writeFile(join(project, "script.mjs"), SCRIPT);
  await writeFile(
    join(project, "script.ts"),
    `import { runAgent, type AgentResult } from "airlock";\nexport const run: Promise<AgentResult> = runAgent({ agent: "agent.ts", policy: "policy.yaml", outputDir: "o" });\n`,
  );
  await writeFile(join(project, "tsconfig.json"), TSCONFIG);
  await writeFile(join(project, "agent.py"), PY_AGENT);
  await writeFile(join(project, "py-policy.yaml"), PY_POLICY);
  await writeFile(join(project, "requirements.txt"), "six==1.16.0\n");
}, 300_000);

describe("the packed package, installed into an empty project", () => {
  it("has no install-time script of its own, so npm names nothing of airlock's to approve", async () => {
    const manifest = JSON.parse(await readFile(join(project, "node_modules", "airlock", "package.json"), "utf8")) as {
      scripts?: Record<string, string>;
    };
    for (const hook of ["preinstall", "install", "postinstall", "prepare"])
      expect(manifest.scripts?.[hook], hook).toBeUndefined();
    expect(installLog).not.toMatch(/airlock@[\d.]+ \(/);
  });

  it("starts its CLI without loading the engine client, the broker clients or the validator when a command does not need them", async () => {
    // A loader hook records every module the CLI loads; --help and --version need commander and nothing else.
    const hook = `import { appendFileSync } from "node:fs";\nexport async function load(url, context, next) { appendFileSync(process.env.LOADED_LOG, url + "\\n"); return next(url, context); }\n`;
    await writeFile(join(project, "loaded-hook.mjs"), hook);
    await writeFile(
      join(project, "loaded-register.mjs"),
      `import { register } from "node:module";\nregister("./loaded-hook.mjs", import.meta.url);\n`,
    );
    for (const args of [["--help"], ["--version"], ["run", "--help"], ["up", "--help"]]) {
      const log = join(project, `loaded-${args.join("")}.txt`);
      const run = await execa(
        "node",
        ["--import", "./loaded-register.mjs", join("node_modules", ".bin", "airlock"), ...args],
        { cwd: project, env: { LOADED_LOG: log }, reject: false },
      );
      expect(run.exitCode, run.stderr).toBe(0);
      const packages = new Set(
        (await readFile(log, "utf8"))
          .split("\n")
          .filter((u) => u.includes("/node_modules/"))
          .map((u) => u.split("/node_modules/").pop()!.split("/")[0]),
      );
      packages.delete("airlock");
      expect([...packages], args.join(" ")).toEqual(["commander"]);
    }
  });

  it("runs an agent through npx airlock run", async () => {
    const run = await execa("npx", ["airlock", "run", "agent.ts", "--policy", "policy.yaml", "--output", "out"], {
      cwd: project,
      reject: false,
      env: { NO_COLOR: "1" },
    });
    expect(run.exitCode, `${run.stdout}\n${run.stderr}`).toBe(0);
    expect(run.stdout).toContain("redis said PONG");
    expect(await readFile(join(project, "out", "pong.txt"), "utf8")).toBe("PONG\n");
  });

  it("runs a Python agent, with its policy's requirements.txt, through npx airlock run", async () => {
    const run = await execa("npx", ["airlock", "run", "agent.py", "--policy", "py-policy.yaml", "--output", "out-py"], {
      cwd: project,
      reject: false,
      env: { NO_COLOR: "1" },
    });
    expect(run.exitCode, `${run.stdout}\n${run.stderr}`).toBe(0);
    expect(run.stdout).toContain("python redis said True");
    expect(await readFile(join(project, "out-py", "pong.txt"), "utf8")).toBe("True\n");
  });

  it("runs an agent through runAgent(), and the process ends soon after it returns", async () => {
    const run = await execa("node", ["script.mjs"], { cwd: project, reject: false });
    const ended = Date.now();
    expect(run.exitCode, `${run.stdout}\n${run.stderr}`).toBe(0);
    expect(run.stdout).toContain('STATUS succeeded {"pong":"PONG"}');
    const returned = Number(/RETURNED (\d+)/.exec(run.stdout)![1]);
    // Removing the container is all that is left once the result is there.
    expect(ended - returned).toBeLessThan(1000);
  });

  it("type-checks an agent and a script against the installed types", async () => {
    const tsc = await execa("node", [packagePath("node_modules", "typescript", "bin", "tsc"), "-p", "."], {
      cwd: project,
      reject: false,
    });
    expect(tsc.exitCode, tsc.stdout + tsc.stderr).toBe(0);
  });

  it("npx airlock init writes a working pair that npx airlock up runs, with schema lines that resolve, and never overwrites", async () => {
    const init = await execa("npx", ["airlock", "init", "redis-pubsub"], {
      cwd: project,
      reject: false,
      env: { NO_COLOR: "1" },
    });
    expect(init.exitCode, init.stderr).toBe(0);
    expect(init.stdout).toContain("npx airlock up redis-pubsub/run.yaml");
    const runFile = await readFile(join(project, "redis-pubsub", "run.yaml"), "utf8");
    expect(runFile).toContain("$schema=../node_modules/airlock/policies/run.schema.json");
    const up = await execa("npx", ["airlock", "up", "redis-pubsub/run.yaml"], {
      cwd: project,
      reject: false,
      env: { NO_COLOR: "1" },
    });
    expect(up.exitCode, `${up.stdout}\n${up.stderr}`).toBe(0);
    expect(up.stdout).toMatch(/all 2 agents succeeded/);
    const again = await execa("npx", ["airlock", "init", "redis-pubsub"], { cwd: project, reject: false });
    expect(again.exitCode).toBe(2);
    expect(again.stderr).toMatch(/already exist: nothing was written[\s\S]*--dir/);
    const py = await execa("npx", ["airlock", "init", "python-redis-pubsub", "--dir", "py-pair"], {
      cwd: project,
      reject: false,
      env: { NO_COLOR: "1" },
    });
    expect(py.exitCode, py.stderr).toBe(0);
    const pyUp = await execa("npx", ["airlock", "up", "py-pair/run.yaml"], {
      cwd: project,
      reject: false,
      env: { NO_COLOR: "1" },
    });
    expect(pyUp.exitCode, `${pyUp.stdout}\n${pyUp.stderr}`).toBe(0);
  }, 300_000);

  it("runs the README's package-user commands (Using it) as written, in a fresh folder of the project", async () => {
    const readme = await readFile(packagePath("README.md"), "utf8");
    const section = readme.slice(readme.indexOf("## Using it"));
    const block = /```sh\n([\s\S]*?)```/.exec(section)![1]!;
    const commands = block
      .split("\n")
      .map((l) => l.replace(/\s+#.*$/, "").trim())
      .filter(Boolean);
    expect(commands.length).toBeGreaterThanOrEqual(5);
    const here = join(project, "readme-user");
    await mkdir(here, { recursive: true });
    for (const command of commands) {
      const run = await execa(command, { cwd: here, shell: true, reject: false, env: { NO_COLOR: "1" } });
      expect(run.exitCode, `${command}\n${run.stdout}\n${run.stderr}`).toBe(0);
    }
  }, 300_000);

  it("--typecheck uses the project's own TypeScript: without it says how to get it; with it names file, line and column before anything starts", async () => {
    await writeFile(
      join(project, "bad.ts"),
      'import { defineAgent } from "airlock/agent";\nexport default defineAgent(async (ctx) => {\n  const n: number = "seven";\n  ctx.log(String(n));\n});\n',
    );
    const without = await execa(
      "npx",
      ["airlock", "run", "bad.ts", "--policy", "policy.yaml", "--output", "out-tc", "--typecheck"],
      { cwd: project, reject: false, env: { NO_COLOR: "1" } },
    );
    expect(without.exitCode).toBe(125);
    expect(without.stdout + without.stderr).toMatch(
      /needs TypeScript in its project[\s\S]*npm install --save-dev typescript/,
    );
    // As if installed (npm i -D typescript): the repository's copy.
    await symlink(packagePath("node_modules", "typescript"), join(project, "node_modules", "typescript"));
    const checked = await execa(
      "npx",
      ["airlock", "run", "bad.ts", "--policy", "policy.yaml", "--output", "out-tc", "--typecheck"],
      { cwd: project, reject: false, env: { NO_COLOR: "1" } },
    );
    expect(checked.exitCode).toBe(125);
    expect(checked.stdout + checked.stderr).toMatch(
      /bad\.ts:3:9: TS2322: Type 'string' is not assignable to type 'number'/,
    );
    const plain = await execa("npx", ["airlock", "run", "bad.ts", "--policy", "policy.yaml", "--output", "out-tc"], {
      cwd: project,
      reject: false,
      env: { NO_COLOR: "1" },
    });
    expect(plain.exitCode, plain.stdout + plain.stderr).toBe(0);
  }, 300_000);

  it("exports the API the README names from airlock, and the plumbing only from airlock/internal", async () => {
    const list = async (specifier: string) => {
      const r = await execa(
        "node",
        [
          "--input-type=module",
          "-e",
          `const m = await import(${JSON.stringify(specifier)}); console.log(Object.keys(m).sort().join(" "))`,
        ],
        { cwd: project },
      );
      return r.stdout.trim().split(" ");
    };
    const api = await list("airlock");
    expect(api.filter((n) => !n.endsWith("Error") && n !== "formatIssue")).toEqual([
      "Runner",
      "containersRemoved",
      "createRunner",
      "definePolicy",
      "loadPolicy",
      "loadRunFile",
      "parsePolicy",
      "runAgent",
      "runAgents",
    ]);
    expect(api).toContain("PolicyError");
    expect(await list("airlock/internal")).toEqual(
      expect.arrayContaining(["ensureImages", "dockerClient", "cleanup", "policyJsonSchema", "kafkaPreflight"]),
    );
  });

  it("ships both JSON Schemas and the local brokers' command", async () => {
    for (const f of ["policy.schema.json", "run.schema.json"])
      expect(
        JSON.parse(await readFile(join(project, "node_modules", "airlock", "policies", f), "utf8")).$schema,
      ).toContain("draft-07");
    const status = await execa("npx", ["airlock", "brokers", "status", "redis"], { cwd: project, reject: false });
    expect(status.exitCode, status.stderr).toBe(0);
    expect(status.stdout).toMatch(/redis\s+up/);
  });
  it("installs the Python front end from the package into a fresh virtual environment and runs the SDK's Redis pair from there", async () => {
    const venv = join(project, "sdk-venv");
    await execa("python3", ["-m", "venv", venv]);
    // The command the README gives, with no package index: the front end needs nothing but the standard library.
    await execa(join(venv, "bin", "pip"), ["install", "--quiet", "./node_modules/airlock/python-sdk"], {
      cwd: project,
      env: { PIP_NO_INDEX: "1" },
    });
    const pair = join(project, "sdk-pair");
    await cp(join(project, "node_modules", "airlock", "examples", "python-sdk", "redis-pubsub"), pair, {
      recursive: true,
    });
    const run = await execa(
      "bash",
      ["-c", `. "${venv}/bin/activate"; python3 consumer.py & python3 producer.py; wait`],
      {
        cwd: pair,
        all: true,
        reject: false,
        timeout: 240_000,
      },
    );
    expect(run.all).toContain("Consumer completed: 0");
    expect(run.all).toContain("Producer completed: 0");
    expect(await readFile(join(pair, "output", "summary.txt"), "utf8")).toMatch(/10 messages/);
    // The CLI it drove is the package's own, not the repository's.
    const installed = await execa(join(venv, "bin", "python"), [
      "-c",
      "import airlock_sdk._install as i; print(i.AIRLOCK_ROOT)",
    ]);
    expect(installed.stdout.trim()).toBe(join(project, "node_modules", "airlock"));
  }, 300_000);
});
