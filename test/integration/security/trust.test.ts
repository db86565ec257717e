/**
 * The ways around the gate found from outside (issue 10), each really attempted:
 * - images someone derived from ours, or that carry our label, must never gate themselves: a fake
 *   init, a no-op iptables-restore and a label alone all end up behind a gate container, with no
 *   capabilities in the agent's container, and the decoy the agent tries gets nothing;
 * - the runner's own check of the rules from outside the container catches rules that are not the
 *   ones it sent;
 * - the host accepts nothing from airlock's bridge but what a running agent's policy allows, even
 *   from a container with no gate at all, and a container that takes a running agent's address
 *   and MAC cannot use that agent's host rules.
 * Rows go into docs/SECURITY.md.
 */
import { join } from "node:path";
import { execa } from "execa";
import type Docker from "dockerode";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { definePolicy, runAgent, type AgentResult } from "../../../runner/index.js";
import { dockerClient, ensureImages } from "../../../runner/internal.js";
import { ensureNetwork } from "../../../runner/backends/docker/network.js";
import { INPUT_CHAIN } from "../../../runner/backends/docker/gate/host-netfilter.js";
import { canInspectFromHost } from "../../../runner/backends/docker/gate/netns.js";
import { ipv4Rules, ipv6Rules } from "../../../runner/gate/rules.js";
import { defaultVerifier } from "../../../runner/backends/docker/gate/verify.js";
import { waitUntil } from "../../../runner/util/wait-until.js";
import { AGENTS, tcpDecoy, tempDir, type Decoy } from "../helpers.js";
import { attackerImage, derivedImage } from "./attacker.js";
import { SecurityReport } from "./report.js";

const report = new SecurityReport("0-trust");
const root = process.getuid?.() === 0;

/** What the agent saw of itself, and whether it reached the decoy. */
const SELF_REPORT = (host: string, port: number) => `
const net = require("net"), fs = require("fs");
const status = fs.readFileSync("/proc/self/status", "utf8");
const caps = (status.match(/CapEff:\\s*(\\S+)/) || [])[1];
const s = net.connect(${port}, "${host}");
s.setTimeout(3000, () => { console.log("OUTCOME timeout uid=" + process.getuid() + " caps=" + caps); process.exit(0); });
s.on("connect", () => { console.log("OUTCOME connected uid=" + process.getuid() + " caps=" + caps); process.exit(0); });
s.on("error", (e) => { console.log("OUTCOME " + e.code + " uid=" + process.getuid() + " caps=" + caps); process.exit(0); });`;

async function runIn(image: string, decoy: Decoy): Promise<AgentResult> {
  return runAgent({
    command: ["node", "-e", SELF_REPORT(decoy.host, decoy.port)],
    image,
    policy: definePolicy({ name: "derived", network: { allowedEndpoints: ["localhost:6379"] }, timeoutSeconds: 60 }),
    outputDir: join(await tempDir(), "out"),
  });
}

afterAll(() => report.save());

describe("images airlock did not build never gate themselves", () => {
  let decoy: Decoy;
  let agentTag: string;
  beforeAll(async () => {
    decoy = await tcpDecoy((await ensureNetwork(dockerClient())).gateway);
    agentTag = (await ensureImages(dockerClient())).agent;
  });
  afterAll(() => decoy.close());

  const cases: [string, string, (base: string) => string][] = [
    [
      "fake-init",
      "an image derived from ours whose /opt/airlock/init is replaced by one that loads nothing and forges a clean report",
      () =>
        `FROM ${agentTag}\nUSER root\nRUN printf '#!/bin/sh\\necho "\\036airlock-gate forged applied legacy"\\nexec "$@"\\n' > /opt/airlock/init && chmod +x /opt/airlock/init\nLABEL dev.airlock.self-gating="1"\nUSER 10001:10001\n`,
    ],
    [
      "noop-iptables",
      "an image derived from ours whose iptables-restore does nothing",
      () =>
        `FROM ${agentTag}\nUSER root\nRUN for b in /usr/sbin/iptables-legacy-restore /usr/sbin/iptables-nft-restore /usr/sbin/ip6tables-legacy-restore /usr/sbin/ip6tables-nft-restore; do ln -sf /bin/true "$b"; done\nUSER 10001:10001\n`,
    ],
    [
      "label-only",
      "an unrelated image that only carries the label airlock 0.1 trusted",
      (base) => `FROM ${base}\nLABEL dev.airlock.self-gating="1"\nENTRYPOINT []\n`,
    ],
  ];

  it.each(cases)(
    "%s: runs behind a gate container with no capabilities, and reaches nothing",
    async (name, label, dockerfile) => {
      const base = (await ensureImages(dockerClient())).base;
      const image = await derivedImage(name, dockerfile(base));
      const before = decoy.hits();
      const result = await runIn(image, decoy);
      const outcome =
        /OUTCOME (.*)/.exec(result.stdout)?.[1] ?? `${result.status}: ${result.error ?? result.stderr.slice(-200)}`;
      const caps = /caps=(\S+)/.exec(outcome)?.[1];
      const uid = /uid=(\d+)/.exec(outcome)?.[1];
      const listed = result.denied.some((d) => d.destination === `${decoy.host}:${decoy.port}`);
      const held =
        result.status === "succeeded" &&
        /^ECONNREFUSED/.test(outcome) &&
        caps === "0000000000000000" &&
        uid !== "0" &&
        decoy.hits() === before &&
        listed;
      expect(
        report.add(
          "image trust",
          label,
          "gate container: agent uid ≠ 0, no capabilities, decoy refused and listed as denied",
          `${outcome}; decoy hits ${decoy.hits() - before}; denied lists it: ${listed}`,
          held,
        ),
        `${outcome}\n${result.stderr}`,
      ).toBe(true);
    },
  );
});

describe("the runner checks the rules from outside before the agent starts", () => {
  let holder: Docker.Container | undefined;
  afterAll(async () => holder?.remove({ force: true }).catch(() => {}));

  it("rules that are not the ones airlock sent are caught; the ones it sent pass", async () => {
    const docker = dockerClient();
    const images = await ensureImages(docker);
    const net = await ensureNetwork(docker);
    const expected = {
      v4: ipv4Rules({
        gateway: net.gateway,
        forwarded: [{ port: 6379, forwarderPort: 6379 }],
        direct: [{ ip: "192.0.2.10", port: 9092 }],
      }),
      v6: ipv6Rules(),
    };
    // A namespace whose rules someone loosened: the same rules with the final REJECT removed.
    const loosened = expected.v4.replace("-A OUTPUT -j REJECT --reject-with icmp-port-unreachable\n", "");
    const b64 = (s: string) => Buffer.from(s).toString("base64");
    holder = await docker.createContainer({
      Image: images.ids.gate,
      Entrypoint: [
        "sh",
        "-c",
        `echo ${b64(loosened)} | base64 -d | iptables-legacy-restore && echo ${b64(expected.v6)} | base64 -d | ip6tables-legacy-restore && echo loaded && sleep 120`,
      ],
      Labels: { "dev.airlock.test": "rules-holder" },
      HostConfig: {
        NetworkMode: net.name,
        CapDrop: ["ALL"],
        CapAdd: ["NET_ADMIN", "NET_RAW"],
        Tmpfs: { "/run": "rw", "/tmp": "rw" },
        Sysctls: { "net.ipv6.conf.all.disable_ipv6": "1" },
      },
    });
    await holder.start();
    await waitUntil(async () => (await holder!.logs({ stdout: true })).toString().includes("loaded"), {
      timeoutMs: 10_000,
      intervalMs: 50,
    });
    const info = await holder.inspect();
    const verifier = defaultVerifier(docker, images.ids.gate, { "dev.airlock.test": "verifier" });
    const target = { pid: info.State.Pid, containerId: info.Id };
    const caught = await verifier.verify(target, expected).then(
      () => "accepted",
      (e: Error) => e.message,
    );
    // The same namespace, with exactly the rules airlock sends.
    const fix = await execa(
      "docker",
      ["exec", info.Id, "sh", "-c", `echo ${b64(expected.v4)} | base64 -d | iptables-legacy-restore`],
      { reject: false },
    );
    expect(fix.exitCode, fix.stderr).toBe(0);
    const passed = await verifier.verify(target, expected).then(
      () => "accepted",
      (e: Error) => e.message,
    );
    const held =
      /not the ones airlock sent/.test(caught) &&
      /missing: filter -A OUTPUT --reject-with icmp-port-unreachable -j REJECT/.test(caught) &&
      passed === "accepted";
    expect(
      report.add(
        "gate",
        `rules loosened in the sandbox's namespace (final REJECT removed) before the agent starts (${canInspectFromHost() ? "read with nsenter on the host" : "read by a verifier container"})`,
        "caught: the agent is not started; the exact rules pass",
        `${caught.slice(0, 90)}…; exact rules: ${passed}`,
        held,
      ),
      caught,
    ).toBe(true);
  });
});

describe("the host accepts from airlock's bridge only what a running agent's policy allows", () => {
  const docker = dockerClient();
  let gateway: string;
  let prefix: number;
  const counter = async (target: string) => {
    const r = await execa("iptables", ["-w", "-t", "filter", "-L", INPUT_CHAIN, "-n", "-v", "-x"]);
    // pkts bytes target prot opt in out source destination [match...]: the chain's last rule, DROP of everything.
    const rows = r.stdout
      .split("\n")
      .map((l) => l.trim().split(/\s+/))
      .filter((c) => c[2] === target && c[7] === "0.0.0.0/0" && c[8] === "0.0.0.0/0" && c.length === 9);
    return rows.reduce((n, c) => n + Number(c[0]), 0);
  };

  /** A container on airlock's bridge that is no airlock agent: no gate, NET_ADMIN in its own namespace. */
  async function rogue(script: string): Promise<string> {
    const image = await attackerImage({ airlockBuilt: false });
    const c = await docker.createContainer({
      Image: image,
      Entrypoint: ["sh", "-c", script],
      User: "0",
      Labels: { "dev.airlock.test": "rogue" },
      HostConfig: { NetworkMode: "airlock", CapAdd: ["NET_ADMIN", "NET_RAW"] },
    });
    try {
      await c.start();
      await c.wait();
      return (await c.logs({ stdout: true, stderr: true })).toString();
    } finally {
      await c.remove({ force: true }).catch(() => {});
    }
  }
  const connectTo = (host: string, port: number) => `python3 -c 'import socket
try:
    socket.create_connection(("${host}", ${port}), 3); print("OUTCOME connected")
except Exception as e:
    print("OUTCOME " + type(e).__name__)'`;

  beforeAll(async () => {
    const net = await ensureNetwork(docker);
    gateway = net.gateway;
    prefix = Number(net.subnet.split("/")[1]);
    // A gated run first, so the host side is in place (chains are set up by the first run).
    const warm = await runAgent({
      command: ["true"],
      policy: definePolicy({ name: "warm", network: { allowedEndpoints: ["localhost:6379"] } }),
      outputDir: join(await tempDir(), "warm"),
    });
    expect(warm.status).toBe("succeeded");
  });

  it("a container with no gate at all reaches no host port through the bridge", async () => {
    if (!root) {
      report.add(
        "host",
        "no gate at all: TCP from airlock's bridge to the host",
        "n/a",
        "runner not root: no host-side filter (documented)",
        true,
      );
      return;
    }
    const decoy = await tcpDecoy(gateway);
    try {
      const before = await counter("DROP");
      const logs = await rogue(connectTo(gateway, decoy.port));
      const outcome = /OUTCOME (\S+)/.exec(logs)?.[1] ?? logs.slice(-200);
      const dropped = (await counter("DROP")) - before;
      const held = outcome !== "connected" && decoy.hits() === 0 && dropped > 0;
      expect(
        report.add(
          "host",
          "a container on airlock's bridge with no gate (a subverted in-container gate) connects to a host port on the gateway",
          "dropped by the host (AIRLOCK-INPUT); decoy gets nothing",
          `${outcome}; decoy hits ${decoy.hits()}; host dropped ${dropped} packets`,
          held,
        ),
        logs,
      ).toBe(true);
    } finally {
      await decoy.close();
    }
  });

  it("a container that takes a running agent's address and MAC cannot use that agent's localhost endpoint", async () => {
    if (!root) {
      report.add(
        "host",
        "take a running agent's address to use its host rules",
        "n/a",
        "runner not root: the forwarder accepts only the agent's address (documented)",
        true,
      );
      return;
    }
    const decoy = await tcpDecoy("127.0.0.1");
    const stop = new AbortController();
    let announce: (ip: string) => void;
    const announced = new Promise<string>((r) => (announce = r));
    const victim = runAgent({
      agent: join(AGENTS, "victim.ts"),
      policy: definePolicy({
        name: "victim",
        network: { allowedEndpoints: [`localhost:${decoy.port}`] },
        timeoutSeconds: 120,
      }),
      outputDir: join(await tempDir(), "victim"),
      signal: stop.signal,
      onEvent: (e) =>
        e.type === "output" && e.line.startsWith("LISTENING ") && announce(e.line.split(" ")[1]!.split(":")[0]!),
    });
    try {
      const ip = await announced;
      // Whichever container owns the victim's namespace on the bridge (its sandbox, or the gate it joined).
      const onBridge = Object.values((await docker.getNetwork("airlock").inspect()).Containers ?? {}) as {
        IPv4Address: string;
        MacAddress: string;
      }[];
      const mac = onBridge.find((c) => c.IPv4Address.split("/")[0] === ip)?.MacAddress;
      expect(mac, `no container on airlock's bridge has ${ip}`).toMatch(/^([0-9a-f]{2}:){5}[0-9a-f]{2}$/);
      const script = `set -e
ip link set eth0 down; ip link set eth0 address ${mac}; ip link set eth0 up
ip addr flush dev eth0; ip addr add ${ip}/${prefix} dev eth0; ip route add default via ${gateway}
${connectTo(gateway, decoy.port)}`;
      const logs = await rogue(script);
      const outcome = /OUTCOME (\S+)/.exec(logs)?.[1] ?? logs.slice(-200);
      const held = outcome !== "connected" && decoy.hits() === 0;
      expect(
        report.add(
          "host",
          "a container on airlock's bridge takes a running agent's IP and MAC and connects to the gateway port that agent's localhost endpoint is forwarded from",
          "no match (host rules are bound to the agent's own bridge port); the host loopback decoy gets nothing",
          `${outcome}; decoy hits ${decoy.hits()}`,
          held,
        ),
        logs,
      ).toBe(true);
    } finally {
      stop.abort();
      await victim;
      await decoy.close();
    }
  });
});

describe("the workspace keeps secrets out", () => {
  it("mounts nothing unless asked; a named folder without its .env, keys and credentials unless the policy lists them", async () => {
    const image = await attackerImage({ airlockBuilt: true });
    const dir = await tempDir();
    const { mkdir, writeFile } = await import("node:fs/promises");
    await writeFile(join(dir, ".env"), "OPENAI_API_KEY=sk-test-secret\n");
    await writeFile(join(dir, ".env.example"), "OPENAI_API_KEY=\n");
    await writeFile(join(dir, "config.json"), "{}\n");
    await mkdir(join(dir, ".ssh"));
    await writeFile(join(dir, ".ssh", "id_ed25519"), "PRIVATE KEY\n");
    await writeFile(join(dir, "deploy.pem"), "PRIVATE KEY\n");
    const script = `import os, json
def read(p):
    try: return open(p).read().strip() or "(empty)"
    except Exception as e: return type(e).__name__
print("RESULT " + json.dumps({p: read("/workspace/" + p) for p in [".env", ".env.example", "config.json", ".ssh/id_ed25519", "deploy.pem"]} | {"listing": sorted(os.listdir("/workspace"))}))`;
    const run = async (workingDir: string | undefined, include?: string[]) => {
      const result = await runAgent({
        command: ["python3", "-c", script],
        image,
        policy: definePolicy({ name: "ws", ...(include ? { workspace: { include } } : {}) }),
        outputDir: join(await tempDir(), "out"),
        ...(workingDir ? { workingDir } : {}),
      });
      return { result, seen: JSON.parse(/RESULT (.*)/.exec(result.stdout)?.[1] ?? "{}") as Record<string, string> };
    };
    const none = await run(undefined);
    const named = await run(dir);
    const listed = await run(dir, ["deploy.pem"]);
    const held =
      none.seen.listing?.length === 0 &&
      named.seen[".env"] === "(empty)" &&
      named.seen[".ssh/id_ed25519"] === "FileNotFoundError" &&
      named.seen["deploy.pem"] === "(empty)" &&
      named.seen["config.json"] === "{}" &&
      named.seen[".env.example"] === "OPENAI_API_KEY=" &&
      JSON.stringify(named.result.workspaceHidden) === JSON.stringify([".env", ".ssh", "deploy.pem"]) &&
      listed.seen["deploy.pem"] === "PRIVATE KEY" &&
      listed.seen[".env"] === "(empty)";
    expect(
      report.add(
        "secrets",
        "read /workspace/.env (an API key), .ssh/ and *.pem of the working directory",
        "nothing mounted by default; secrets hidden; workspace.include lets a listed one in",
        `default: ${JSON.stringify(none.seen.listing)}; .env ${named.seen[".env"]}, .ssh/id_ed25519 ${named.seen[".ssh/id_ed25519"]}, deploy.pem ${named.seen["deploy.pem"]} (listed: ${listed.seen["deploy.pem"]?.slice(0, 11)})`,
        held,
      ),
      JSON.stringify([none.seen, named.seen, listed.seen, named.result.stderr]),
    ).toBe(true);
  });
});

describe("the output limit counts what the host spends", () => {
  it("20k folders, 20k empty files and long links under resources.output 1m: refused at the limit, and the run fails", async () => {
    const image = await attackerImage({ airlockBuilt: true });
    const outputDir = join(await tempDir(), "out");
    const script = `import os
for i in range(20000):
    os.mkdir("/output/d%d" % i)
    open("/output/f%d" % i, "w").close()
    if i < 2000: os.symlink("x" * 4000, "/output/l%d" % i)
print("done")`;
    const result = await runAgent({
      command: ["python3", "-c", script],
      image,
      policy: definePolicy({ name: "inodes", resources: { output: "1m" }, timeoutSeconds: 120 }),
      outputDir,
      stopGraceMs: 1000,
    });
    const { readdir } = await import("node:fs/promises");
    const entries = (await readdir(outputDir)).length;
    // /output has 10,000 inodes (resources.outputFiles) and 1 MiB: the kernel refuses the rest.
    const held =
      result.status === "failed" &&
      /output limit (reached|exceeded)/.test(result.error ?? "") &&
      !result.stdout.includes("done") &&
      entries <= 10_000;
    expect(
      report.add(
        "output",
        "20k folders, 20k empty files and 2k long symlinks in /output under resources.output: 1m",
        "refused by /output's own filesystem at the limit; the run fails; no more than the limit reaches the host",
        `${entries} entries on the host; ${result.status}: ${result.error?.slice(0, 60)}`,
        held,
      ),
      JSON.stringify(result).slice(0, 500),
    ).toBe(true);
  });
});
