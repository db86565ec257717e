/**
 * Escape attempts against a sandbox whose policy allows exactly one endpoint (localhost:6379).
 * Each attempt is really made by an agent (attack.py in the attacker image); decoys started here
 * count what reaches them, and a decoy that receives anything is a failure. Every target is a decoy
 * this test started, on the loopback, on airlock's bridge, on Docker's default bridge, or in a
 * container on airlock's bridge. Rows go into docs/SECURITY.md.
 */
import { existsSync } from "node:fs";
import { lstat, readFile, stat, readdir } from "node:fs/promises";
import { networkInterfaces } from "node:os";
import { join } from "node:path";
import { execa } from "execa";
import type Docker from "dockerode";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { definePolicy, dockerClient, ensureImages, runAgent } from "../../../runner/index.js";
import { GUARD_CHAIN } from "../../../runner/gate/host-netfilter.js";
import { waitUntil } from "../../../runner/util/wait-until.js";
import { bridgeGateway, leftoverContainers, tcpDecoy, tempDir, type Decoy } from "../helpers.js";
import { SecurityReport } from "./report.js";
import { attackerImage } from "./attacker.js";
import { attackConfig, dockerBridgeGateway, escapeChecks, hostDecoys, runAttacker, startVictim, type Victim } from "./escape-checks.js";

const HERE = import.meta.dirname;
const report = new SecurityReport("1-escape");

interface DecoyContainer {
  ip: string;
  container: Docker.Container;
  hits(): Promise<string[]>;
}

/** A container on airlock's bridge with TCP, UDP and DNS listeners that log every packet they get. */
async function decoyContainer(image: string, network: string): Promise<DecoyContainer> {
  const docker = dockerClient();
  const script = `
    const net = require("net"), dgram = require("dgram");
    net.createServer((s) => { console.log("HIT tcp " + s.remoteAddress); s.destroy(); }).listen(7001);
    for (const port of [7002, 53]) dgram.createSocket("udp4").on("message", (m, r) => console.log("HIT udp" + port + " " + r.address)).bind(port);
    console.log("decoy up");`;
  const container = await docker.createContainer({
    Image: image,
    Entrypoint: ["node", "-e", script],
    User: "0",
    Labels: { "dev.airlock.test": "decoy" },
    HostConfig: { NetworkMode: network },
  });
  await container.start();
  await waitUntil(async () => (await container.logs({ stdout: true, stderr: true })).toString().includes("decoy up"), { timeoutMs: 10_000, intervalMs: 50 });
  const ip = (await container.inspect()).NetworkSettings.Networks[network]!.IPAddress;
  return {
    ip,
    container,
    hits: async () => (await container.logs({ stdout: true, stderr: true })).toString().split("\n").filter((l) => l.includes("HIT")),
  };
}

function escapeSuite(mode: EscapeMode): void {
describe(`escape attempts, ${mode.label} (policy allows only localhost:6379)`, () => {
  const area = (name: string) => (mode.area ? `${name} (${mode.area})` : name);
  let decoys: Record<string, Decoy> = {};
  let gateway: string;
  let box: DecoyContainer;
  let victim: Victim;
  let attack: Awaited<ReturnType<typeof runAttacker>>;
  const secret = `host-secret-${Date.now()}`;

  beforeAll(async () => {
    const image = await attackerImage({ airlockBuilt: mode.airlockBuilt, language: mode.language });
    gateway = await bridgeGateway();
    const dockerBridge = await dockerBridgeGateway();
    decoys = await hostDecoys(gateway, dockerBridge);
    const linkLocal = Object.entries(networkInterfaces()).find(([n]) => n === "airlock0")?.[1]?.find((i) => i.family === "IPv6" && i.address.startsWith("fe80"));
    box = await decoyContainer((await ensureImages(dockerClient())).agent, "airlock");
    victim = await startVictim();
    const ipv6 = linkLocal ? [{ id: "host-link-local", host: `${linkLocal.address}%eth0`, port: decoys.ipv6!.port }] : [];
    attack = await runAttacker({ image, language: mode.language }, attackConfig({ gateway, dockerBridge, decoys, boxIp: box.ip, victimIp: victim.ip, ipv6 }), HERE, secret);
  }, 600_000);

  afterAll(async () => {
    delete process.env.AIRLOCK_TEST_HOST_SECRET;
    await victim?.hits().catch(() => 0);
    await box?.container.remove({ force: true }).catch(() => {});
    await Promise.all(Object.values(decoys).map((d) => d.close()));
    report.save();
  });

  escapeChecks(() => ({ ...attack, workspace: HERE, gateway, decoys, boxIp: box.ip, boxHits: () => box.hits(), victimIp: victim.ip, victimHits: () => victim.hits(), secret, leftovers: () => leftoverContainers() }), report, area);
});
}

interface EscapeMode {
  label: string;
  /** Suffix for the report's area column (the default path has none). */
  area?: string;
  airlockBuilt: boolean;
  /** The agent image the attacker's is built on, and (python) whether its runtime runs the attack. */
  language: "node" | "python";
}

// The same attacks against both ways a sandbox is gated: the agent image's own init (the default),
// and a gate container, for images not built from the agent image; from each language's image.
escapeSuite({ label: "an image airlock built, gated by its own init", airlockBuilt: true, language: "node" });
escapeSuite({ label: "an image derived from ours by plain docker build, gated by a gate container", area: "gate container", airlockBuilt: false, language: "node" });
// The same attacks from a Python agent: the Python image, its runtime's bootstrap, its init.
escapeSuite({ label: "a Python agent in an image airlock built on its Python image, gated by its own init", area: "Python agent", airlockBuilt: true, language: "python" });
escapeSuite({ label: "a Python agent in an image derived from airlock's Python image by plain docker build, gated by a gate container", area: "Python agent, gate container", airlockBuilt: false, language: "python" });

describe("host side of localhost endpoints (kernel DNAT, runner as root)", () => {
  const report3 = new SecurityReport("2b-host-side");
  afterAll(() => report3.save());

  // route_localnet is on for airlock's bridge, so the host would accept packets for 127.0.0.0/8
  // arriving there (CVE-2020-8558). A container on that bridge that is not an airlock agent, with
  // NET_ADMIN and NET_RAW in its own namespace, routes 127.0.0.1 out of eth0 to the host and tries a
  // decoy on the host's loopback. The guard must drop it, and its counter proves the packets came.
  it("a container on airlock's bridge cannot reach the host's loopback by routing 127.0.0.1 to it", async () => {
    if (process.getuid?.() !== 0) {
      report3.add("host", "route 127.0.0.1 to the host from airlock's bridge", "n/a", "runner not root: localhost endpoints use the user-space forwarder, route_localnet stays off", true);
      return;
    }
    const docker = dockerClient();
    const gateway = await bridgeGateway();
    const decoy = await tcpDecoy("127.0.0.1");
    // A gated run first, so the host side (chains, guard, route_localnet) is in place.
    const warm = await runAgent({ command: ["true"], policy: definePolicy({ name: "warm", network: { allowedEndpoints: ["localhost:6379"] } }), outputDir: join(await tempDir(), "warm"), workingDir: HERE });
    expect(warm.status).toBe("succeeded");
    const guardDrops = async () => {
      const r = await execa("iptables", ["-w", "-t", "filter", "-L", GUARD_CHAIN, "-n", "-v", "-x"]);
      return r.stdout.split("\n").filter((l) => l.includes("DROP")).reduce((n, l) => n + Number(l.trim().split(/\s+/)[0]), 0);
    };
    const before = await guardDrops();
    const script = `set -e
ip route del local 127.0.0.0/8 dev lo table local 2>/dev/null || true
ip route del local 127.0.0.1 dev lo table local 2>/dev/null || true
ip route add 127.0.0.1/32 via ${gateway} dev eth0 onlink
python3 -c 'import socket
try:
    socket.create_connection(("127.0.0.1", ${decoy.port}), 3); print("OUTCOME connected")
except Exception as e:
    print("OUTCOME " + type(e).__name__)'`;
    const container = await docker.createContainer({
      Image: await attackerImage({ airlockBuilt: true }),
      Entrypoint: ["sh", "-c", script],
      User: "0",
      Labels: { "dev.airlock.test": "host-side-attacker" },
      HostConfig: { NetworkMode: "airlock", CapAdd: ["NET_ADMIN", "NET_RAW"], Sysctls: { "net.ipv4.conf.all.route_localnet": "1", "net.ipv4.conf.eth0.route_localnet": "1" } },
    });
    try {
      await container.start();
      await container.wait();
      const logs = (await container.logs({ stdout: true, stderr: true })).toString();
      const outcome = /OUTCOME (\S+)/.exec(logs)?.[1] ?? logs.slice(-200);
      const dropped = (await guardDrops()) - before;
      const held = outcome !== "connected" && decoy.hits() === 0 && dropped > 0;
      expect(report3.add("host", "a non-airlock container on airlock's bridge routes 127.0.0.1 to the host (route_localnet)", "dropped by the guard; the host loopback decoy gets nothing", `${outcome}; decoy hits ${decoy.hits()}; guard dropped ${dropped} packets`, held), logs).toBe(true);
    } finally {
      await container.remove({ force: true }).catch(() => {});
      await decoy.close();
    }
  });
});

describe("output tricks", () => {
  const report2 = new SecurityReport("2-output");
  afterAll(() => report2.save());

  it("links, .., FIFOs and oversized files: collecting never reads or writes outside the output folder", async () => {
    const image = await attackerImage({ airlockBuilt: true });
    const dir = await tempDir();
    const outputDir = join(dir, "out");
    const passwdBefore = await stat("/etc/passwd");
    const script = `
import os, json
r = {}
def t(k, f):
    try: r[k] = str(f())
    except Exception as e: r[k] = type(e).__name__ + ": " + str(e)
    open("/output/tricks.json", "w").write(json.dumps(r))
t("symlink-out", lambda: os.symlink("/etc/passwd", "/output/passwd-link"))
t("symlink-dir", lambda: os.symlink("/", "/output/root-link"))
t("hardlink-workspace", lambda: os.link("/workspace/tricks.py", "/output/hard"))
t("hardlink-etc", lambda: os.link("/etc/passwd", "/output/hard2"))
t("dotdot", lambda: open("/output/../../etc/airlock-escape", "w").write("x"))
t("odd-name", lambda: open("/output/..\\nname with ..", "w").write("x"))
t("fifo", lambda: os.mkfifo("/output/pipe"))
def big():
    with open("/output/big.bin", "wb") as f:
        for _ in range(64): f.write(b"x" * (1 << 20))
t("too-large", big)
`;
    const { writeFile } = await import("node:fs/promises");
    await writeFile(join(dir, "tricks.py"), script);
    const result = await runAgent({ command: ["python3", "/workspace/tricks.py"], image, policy: definePolicy({ name: "tricks", resources: { output: "8m" }, timeoutSeconds: 60 }), outputDir, workingDir: dir });
    const r = JSON.parse(await readFile(join(outputDir, "tricks.json"), "utf8").catch(() => { throw new Error(`no tricks.json: ${result.status} ${result.error ?? ""} ${result.stderr}`); })) as Record<string, string>;
    const passwdAfter = await stat("/etc/passwd");
    const hostPasswdUntouched = passwdAfter.uid === passwdBefore.uid && passwdAfter.mtimeMs === passwdBefore.mtimeMs && passwdAfter.mode === passwdBefore.mode;
    const skipped = result.outputSkipped.map((s) => `${s.path} (${s.kind})`);
    expect(report2.add("output", "symlinks to /etc/passwd and / in /output", "listed as skipped, never followed; host files untouched", `skipped: ${skipped.join(", ")}; host /etc/passwd untouched: ${hostPasswdUntouched}`, hostPasswdUntouched && skipped.includes("passwd-link (symlink)") && skipped.includes("root-link (symlink)") && !result.outputFiles.includes("passwd-link"))).toBe(true);
    expect(report2.add("output", "hard links to files outside /output", "fails (cross-device)", `${r["hardlink-workspace"]}; ${r["hardlink-etc"]}`, /Errno 18|cross-device/i.test(r["hardlink-workspace"]!) && /Errno 18|cross-device|Permission/i.test(r["hardlink-etc"]!))).toBe(true);
    expect(report2.add("output", "a path with .. out of /output", "stays inside the sandbox (read-only root)", r.dotdot!, /Read-only|Permission/.test(r.dotdot!) && !existsSync("/etc/airlock-escape"))).toBe(true);
    expect(report2.add("output", "a file name with .. and a newline", "collected as a plain file", JSON.stringify(result.outputFiles.filter((f) => f.includes(".."))), result.outputFiles.includes("..\nname with .."))).toBe(true);
    expect(report2.add("output", "a FIFO in /output", "listed, never opened (collection does not hang)", skipped.filter((s) => s.includes("fifo")).join(", "), skipped.includes("pipe (fifo)") && result.durationMs < 30_000)).toBe(true);
    const big = await stat(join(outputDir, "big.bin")).catch(() => undefined);
    expect(report2.add("output", "a 64 MiB file under an 8 MiB output limit", "stops at the limit (EFBIG); the run fails as over the limit", `${r["too-large"]}; file is ${big?.size ?? 0} bytes; ${result.status}: ${result.error ?? ""}`, /Errno 27|File too large/.test(r["too-large"]!) && (big?.size ?? 0) <= 8 * 1024 * 1024)).toBe(true);
    // Everything the collection touched is inside the output folder and belongs to the caller.
    for (const f of await readdir(outputDir)) expect((await lstat(join(outputDir, f))).uid, f).toBe(process.getuid?.());
  });
});
