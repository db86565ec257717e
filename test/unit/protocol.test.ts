/**
 * The runner and the two gate scripts speak one protocol (runner/gate/protocol.ts): this reads the
 * scripts and checks that every value the runner relies on is the one they use.
 */
import { readFileSync } from "node:fs";
import { execa } from "execa";
import { describe, expect, it } from "vitest";
import { packagePath } from "../../runner/paths.js";
import {
  DENY_TABLE_NAMES,
  GATE_WORDS,
  GO_WORD,
  goLine,
  SLOT_USER_VARIABLE,
  INIT_FAILED_EXIT,
  INIT_LINE_PREFIX,
  INIT_SUPERVISOR_CAPS,
  INIT_WORDS,
  gateRulesLine,
  initRulesLine,
} from "../../runner/gate/protocol.js";

const init = readFileSync(packagePath("images", "agent", "airlock-init.sh"), "utf8");
const gate = readFileSync(packagePath("images", "gate", "gate.sh"), "utf8");
const tag = INIT_LINE_PREFIX.replace("\u001e", "\\036");

describe("the init script and the runner agree", () => {
  it("on the line prefix and the words after it", () => {
    expect(init).toContain(`printf '${tag}%s applied %s\\n'`);
    expect(init).toContain(`printf '${tag}%s end %s\\n'`);
    expect(init).toContain(`printf '${tag}%s == %s\\n'`);
    expect([INIT_WORDS.applied, INIT_WORDS.end]).toEqual(["applied", "end"]);
  });

  it("on the exit code of a gate that failed", () => {
    const exits = [...init.matchAll(/exit (\d+)/g)].map((m) => Number(m[1]));
    expect(new Set(exits)).toEqual(new Set([INIT_FAILED_EXIT]));
  });

  it("on the capabilities left once the rules are in force", () => {
    expect(init).toContain(`[ "$value" = "${INIT_SUPERVISOR_CAPS}" ]`);
    // setgid 6, setuid 7, setpcap 8, kill 5
    expect(BigInt(`0x${INIT_SUPERVISOR_CAPS}`)).toBe((1n << 5n) | (1n << 6n) | (1n << 7n) | (1n << 8n));
    expect(init).toContain("--bounding-set=-all,+setuid,+setgid,+setpcap,+kill");
  });

  it("on the start line, the tables and the first line's fields", () => {
    expect(init).toContain(`[ "$go" = ${GO_WORD} ]`);
    expect(init).toContain("read -r go mode extra");
    expect(init).toContain('[ "$mode" = standby ]');
    const b = (s: string) => Buffer.from(s).toString("base64");
    expect(goLine("exec", ["sh", "-c", "echo hi"], { A_B: "x y", C: "" })).toBe(
      `go exec @${b("sh")} @${b("-c")} @${b("echo hi")} A_B=${b("x y")} C=\n`,
    );
    expect(() => goLine("exec", ["x"], { "A-B": "x" })).toThrow(/not a variable name/);
    expect(() => goLine("standby", [])).toThrow(/command line/);
    expect(init).toContain(`for table in ${DENY_TABLE_NAMES.join(" ")}; do`);
    expect(init).toContain(SLOT_USER_VARIABLE);
    expect(init).toContain('[ "$#" -eq 5 ]');
    expect(initRulesLine({ v4: "a", v6: "b" }, { uid: 1, gid: 2 }, "n").trim().split(" ")).toHaveLength(5);
  });
});

describe("the gate container's script and the runner agree", () => {
  it("on ready, the report's end, the tables and the first line's fields", () => {
    expect(gate).toContain(`echo "${GATE_WORDS.ready}"`);
    expect(gate).toContain(`echo "${GATE_WORDS.reportEnd}"`);
    expect(gate).toContain(`for t in ${DENY_TABLE_NAMES.join(" ")}; do`);
    expect(gate).toContain('[ "$#" -eq 3 ]');
    expect(gateRulesLine({ v4: "a", v6: "b" }, 10).trim().split(" ")).toHaveLength(3);
  });
});

describe("the agent runtimes and the runner agree", () => {
  it("on the control lines (ready, result) and each runtime's command line in its image", async () => {
    const { CONTROL_PREFIX, decodeControl } = await import("../../agent-runtime/protocol.js");
    const { pythonLanguage } = await import("../../runner/languages/python/index.js");
    const py = readFileSync(packagePath("agent-runtime", "python", "airlock", "_protocol.py"), "utf8");
    expect(py).toContain(`CONTROL_PREFIX = "${CONTROL_PREFIX.replace("\u001e", "\\x1e")}"`);
    // What the Python runtime writes (json.dumps with compact separators) decodes on the runner's side.
    expect(decodeControl(`${CONTROL_PREFIX}{"type":"result","value":{"a":[1,2]}}`)).toEqual({
      type: "result",
      value: { a: [1, 2] },
    });
    const dockerfile = readFileSync(packagePath("images", "python", "Dockerfile"), "utf8");
    expect(dockerfile).toContain(`ENTRYPOINT ${JSON.stringify(pythonLanguage.runtimeArgv)}`.replace(/","/g, '", "'));
    const { nodeLanguage } = await import("../../runner/languages/node/index.js");
    expect(readFileSync(packagePath("Dockerfile.agent"), "utf8")).toContain(
      `ENTRYPOINT ${JSON.stringify(nodeLanguage.runtimeArgv)}`.replace(/","/g, '", "'),
    );
  });

  it("on the start line: both runtimes on standby read back the command line and variables the runner sends", async () => {
    const { parseStartTokens } = await import("../../agent-runtime/start-line.js");
    const { nodeLanguage } = await import("../../runner/languages/node/index.js");
    const { pythonLanguage } = await import("../../runner/languages/python/index.js");
    const env = { A: "x y=z", EMPTY: "", UNICODE: "é ✓" };
    const tokens = (argv: readonly string[]) => goLine("standby", argv, env).trim().split(" ").slice(2).join(" ");
    const nodeArgv = [...nodeLanguage.runtimeArgv, "/opt/agent/run/agent.mjs"];
    expect(parseStartTokens(tokens(nodeArgv))).toEqual({ argv: nodeArgv, env });
    expect(() => parseStartTokens("BAD-NAME=eA==")).toThrow(/not a variable/);
    const pyArgv = [...pythonLanguage.runtimeArgv, "/opt/agent/run/agent.py"];
    const script =
      "import json, sys; sys.path.insert(0, sys.argv[1]); from airlock._standby import parse_start_tokens; a, e = parse_start_tokens(sys.argv[2]); print(json.dumps({'argv': a, 'env': e}))";
    const run = await execa("python3", ["-I", "-c", script, packagePath("agent-runtime", "python"), tokens(pyArgv)]);
    expect(JSON.parse(run.stdout)).toEqual({ argv: pyArgv, env });
    // The runtime each language keeps on standby is in its image.
    expect(readFileSync(packagePath("agent-runtime", "standby.ts"), "utf8")).toContain("START_FD = 3");
    expect(nodeLanguage.standby?.argv).toEqual(["node", "/opt/airlock/dist/standby.js"]);
    expect(pythonLanguage.standby?.argv).toEqual(["python3", "-m", "airlock._standby"]);
  });
});
