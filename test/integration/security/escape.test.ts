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
import { definePolicy, dockerClient, ensureImages, runAgent, type AgentResult } from "../../../runner/index.js";
import { GUARD_CHAIN } from "../../../runner/gate/host-netfilter.js";
import { packagePath } from "../../../runner/paths.js";
import { waitUntil } from "../../../runner/util/wait-until.js";
import { AGENTS, bridgeGateway, leftoverContainers, tcpDecoy, tempDir, udpDecoy, type Decoy } from "../helpers.js";
import { SecurityReport } from "./report.js";
import { attackerImage } from "./attacker.js";

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
  const decoys: Record<string, Decoy> = {};
  let gateway: string;
  let dockerBridge: string;
  let box: DecoyContainer;
  let victim: { result: Promise<AgentResult>; stop: AbortController; ip: string };
  let attacks: Record<string, { outcome: string; ms: number }>;
  let result: AgentResult;
  let outputDir: string;
  const secret = `host-secret-${Date.now()}`;

  beforeAll(async () => {
    const docker = dockerClient();
    const image = await attackerImage({ airlockBuilt: mode.airlockBuilt, language: mode.language });
    gateway = await bridgeGateway();
    dockerBridge = ((await docker.getNetwork("bridge").inspect()).IPAM?.Config?.[0] as { Gateway?: string } | undefined)?.Gateway ?? "172.17.0.1";
    decoys.loopbackTcp = await tcpDecoy("127.0.0.1");
    decoys.loopbackUdp = await udpDecoy("127.0.0.1");
    decoys.gatewayTcp = await tcpDecoy(gateway);
    decoys.gatewayAllowedPort = await tcpDecoy(gateway, 6379);
    decoys.gatewayUdp = await udpDecoy(gateway);
    decoys.gatewayDns = await udpDecoy(gateway, 53);
    decoys.dockerBridgeTcp = await tcpDecoy(dockerBridge);
    decoys.late = await tcpDecoy(gateway);
    const linkLocal = Object.entries(networkInterfaces()).find(([n]) => n === "airlock0")?.[1]?.find((i) => i.family === "IPv6" && i.address.startsWith("fe80"));
    decoys.ipv6 = await tcpDecoy("::", 0);
    box = await decoyContainer((await ensureImages(docker)).agent, "airlock");

    // An agent of another airlock run, listening.
    const stop = new AbortController();
    let announce: (ip: string) => void;
    const announced = new Promise<string>((r) => (announce = r));
    const victimResult = runAgent({
      agent: join(AGENTS, "victim.ts"),
      policy: definePolicy({ name: "victim", network: { allowedEndpoints: ["localhost:6379"] }, timeoutSeconds: 120 }),
      outputDir: join(await tempDir(), "victim"),
      workingDir: AGENTS,
      signal: stop.signal,
      onEvent: (e) => e.type === "output" && e.line.startsWith("LISTENING ") && announce(e.line.split(" ")[1]!.split(":")[0]!),
    });
    victim = { result: victimResult, stop, ip: await announced };

    process.env.AIRLOCK_TEST_HOST_SECRET = secret;
    outputDir = join(await tempDir(), "attacker");
    const cfg = {
      gateway,
      allowed: { host: "127.0.0.1", port: 6379 },
      tcp: [
        { id: "other-port-on-allowed-host", host: "127.0.0.1", port: decoys.loopbackTcp.port },
        { id: "allowed-port-on-other-address", host: gateway, port: 6379 },
        { id: "host-via-airlock-bridge", host: gateway, port: decoys.gatewayTcp.port },
        { id: "host-via-docker-bridge", host: dockerBridge, port: decoys.dockerBridgeTcp.port },
        { id: "container-on-same-bridge", host: box.ip, port: 7001 },
        { id: "container-of-another-airlock-run", host: victim.ip, port: 7100 },
      ],
      udp: [
        { id: "host-loopback", host: "127.0.0.1", port: decoys.loopbackUdp.port },
        { id: "host-via-airlock-bridge", host: gateway, port: decoys.gatewayUdp.port },
        { id: "container-on-same-bridge", host: box.ip, port: 7002 },
      ],
      dns: [
        { id: "decoy-dns-on-host", host: gateway, port: 53 },
        { id: "decoy-dns-in-container", host: box.ip, port: 53 },
        { id: "docker-embedded-dns", host: "127.0.0.11", port: 53 },
      ],
      ipv6: [
        { id: "loopback", host: "::1", port: decoys.ipv6.port },
        ...(linkLocal ? [{ id: "host-link-local", host: `${linkLocal.address}%eth0`, port: decoys.ipv6.port }] : []),
      ],
      late: { host: gateway, port: decoys.late.port },
    };
    result = await runAgent({
      // A Python agent's process: the Python runtime's bootstrap runs the attack as the agent file.
      command: mode.language === "python" ? ["python3", "-m", "airlock._bootstrap", "/workspace/attack.py"] : ["python3", "/workspace/attack.py"],
      image,
      policy: definePolicy({ name: "attacker", network: { allowedEndpoints: ["localhost:6379"] }, env: { set: { ATTACK: JSON.stringify(cfg) } }, timeoutSeconds: 120 }),
      outputDir,
      workingDir: HERE,
    });
    attacks = JSON.parse(await readFile(join(outputDir, "attacks.json"), "utf8"));
    await new Promise((r) => setTimeout(r, 5000)); // give the detached child its chance
  }, 600_000);

  afterAll(async () => {
    delete process.env.AIRLOCK_TEST_HOST_SECRET;
    victim?.stop.abort();
    await victim?.result;
    await box?.container.remove({ force: true }).catch(() => {});
    await Promise.all(Object.values(decoys).map((d) => d.close()));
    report.save();
  });

  const failedToConnect = (o: string) => !/^(connected|answered|opened|became root|written)$/.test(o) && !o.startsWith("exit 0");

  it("the allowed endpoint answers, before and after the tampering", () => {
    expect(result.status, result.stderr).toBe("succeeded");
    expect(report.add(area("control"), "TCP to the allowed endpoint localhost:6379", "connects", attacks.allowed!.outcome, attacks.allowed!.outcome === "connected")).toBe(true);
    expect(report.add(area("control"), "allowed endpoint, after the tampering attempts", "connects", attacks["after-tampering:allowed"]!.outcome, attacks["after-tampering:allowed"]!.outcome === "connected")).toBe(true);
  });

  it.each([
    ["other-port-on-allowed-host", "another port on the allowed host (host loopback)"],
    ["allowed-port-on-other-address", "the allowed port on another address (bridge gateway:6379)"],
    ["host-via-airlock-bridge", "the host's address on airlock's bridge"],
    ["host-via-docker-bridge", "the host's address on Docker's default bridge"],
    ["container-on-same-bridge", "another container on the same bridge"],
    ["container-of-another-airlock-run", "an agent of another airlock run"],
  ])("TCP to %s is refused fast", (id, label) => {
    const a = attacks[`tcp:${id}`]!;
    const held = /ConnectionRefused/.test(a.outcome) && a.ms < 1000;
    expect(report.add(area("network"), `TCP: ${label}`, "refused in < 1 s", `${a.outcome} (${a.ms} ms)`, held), a.outcome).toBe(true);
  });

  it.each([
    ["host-loopback", "UDP to the host's loopback"],
    ["host-via-airlock-bridge", "UDP to the host on airlock's bridge"],
    ["container-on-same-bridge", "UDP to another container"],
  ])("UDP %s goes nowhere", (id, label) => {
    const a = attacks[`udp:${id}`]!;
    expect(report.add(area("network"), label, "not delivered", a.outcome, failedToConnect(a.outcome)), a.outcome).toBe(true);
  });

  it("DNS: the system resolver fails at once, and direct queries reach no server", () => {
    const sys = attacks["dns:system-resolver"]!;
    expect(report.add(area("dns"), "lookup through the system resolver", "fails, no query leaves", `${sys.outcome} (${sys.ms} ms)`, sys.outcome.startsWith("gaierror") && sys.ms < 3000)).toBe(true);
    for (const [id, label] of [
      ["decoy-dns-on-host", "query sent straight to a DNS decoy on the host"],
      ["decoy-dns-in-container", "query sent to a DNS decoy in another container"],
      ["docker-embedded-dns", "query to Docker's embedded DNS (127.0.0.11)"],
    ] as const) {
      const a = attacks[`dns:${id}`]!;
      expect(report.add(area("dns"), label, "no answer", a.outcome, failedToConnect(a.outcome)), id).toBe(true);
    }
  });

  it("IPv6 reaches nothing", () => {
    for (const [key, a] of Object.entries(attacks).filter(([k]) => k.startsWith("ipv6:"))) {
      expect(report.add(area("network"), `IPv6 TCP to ${key.slice(5)} decoy`, "fails", a.outcome, failedToConnect(a.outcome)), key).toBe(true);
    }
  });

  it("ICMP and raw sockets are not available", () => {
    for (const [key, label] of [
      ["icmp:ping", "ping (setuid/file-capability binary)"],
      ["icmp:raw-socket", "raw ICMP socket"],
      ["icmp:datagram-socket", "unprivileged ICMP socket"],
      ["raw:packet-socket", "AF_PACKET socket"],
    ] as const) {
      const a = attacks[key]!;
      expect(report.add(area("network"), label, "not permitted", a.outcome, failedToConnect(a.outcome) && /not permitted|PermissionError|exit [12]/i.test(a.outcome)), `${key}: ${a.outcome}`).toBe(true);
    }
  });

  it("no decoy received anything", async () => {
    const hits = Object.entries(decoys).map(([name, d]) => `${name}=${d.hits()}`);
    const boxHits = await box.hits();
    const victimHits = (await (victim.stop.abort(), victim.result)).returnValue as { hits: number };
    const held = hits.every((h) => h.endsWith("=0")) && boxHits.length === 0 && victimHits.hits === 0;
    expect(report.add(area("network"), "decoys (host loopback, bridges, DNS, IPv6, container, other run)", "0 packets received", `${hits.join(" ")} container=${boxHits.length} other-run=${victimHits.hits}`, held)).toBe(true);
  });

  it("the gate cannot be undone from inside", () => {
    for (const [key, label] of [
      ["gate:iptables-flush", "iptables -F"],
      ["gate:iptables-policy-accept", "iptables -P OUTPUT ACCEPT"],
      ["gate:iptables-nat-flush", "iptables -t nat -F"],
      ["gate:route-add", "ip route add"],
      ["gate:address-add", "ip addr add"],
      ["gate:link-down", "ip link set eth0 down"],
      ["gate:sysctl-route-localnet", "write /proc/sys/net/..."],
      ["gate:etc-hosts", "edit /etc/hosts to point a name elsewhere"],
      ["gate:resolv-conf", "edit /etc/resolv.conf to add a nameserver"],
    ] as const) {
      const a = attacks[key]!;
      expect(report.add(area("gate"), label, "denied", a.outcome, failedToConnect(a.outcome)), key).toBe(true);
    }
    const after = Object.entries(attacks).find(([k]) => k.startsWith("after-tampering:tcp:"))![1];
    expect(report.add(area("gate"), "forbidden TCP again, after the tampering attempts", "still refused", after.outcome, /ConnectionRefused/.test(after.outcome))).toBe(true);
  });

  it("no process outlives the agent", async () => {
    const late = !existsSync(join(outputDir, "late.txt")) && decoys.late!.hits() === 0;
    const orphans = await execa("pgrep", ["-f", "airlock-late-marker"], { reject: false });
    const leftover = await leftoverContainers();
    const held = late && orphans.stdout.trim() === "" && leftover.filter((c) => c.includes("attacker")).length === 0;
    expect(report.add(area("lifetime"), "a detached child that waits, then writes output and connects", "killed with the agent", `late.txt ${existsSync(join(outputDir, "late.txt")) ? "written" : "absent"}, decoy hits ${decoys.late!.hits()}, host processes ${orphans.stdout.trim() || "none"}`, held)).toBe(true);
  });

  it("host secrets stay out of reach", () => {
    const env = attacks["secrets:environ"]!.outcome;
    const pid1 = attacks["secrets:pid1-environ"]!.outcome;
    expect(report.add(area("secrets"), "runner's environment variables the policy does not allow", "absent", env.includes(secret) ? "present" : "absent (environ and /proc/1/environ)", !env.includes(secret) && !pid1.includes(secret))).toBe(true);
    expect(report.add(area("secrets"), "the Docker socket", "not mounted", attacks["secrets:docker-socket"]!.outcome, attacks["secrets:docker-socket"]!.outcome === "[]")).toBe(true);
    expect(report.add(area("secrets"), "the Docker API over TCP (host:2375)", "refused", attacks["secrets:docker-tcp"]!.outcome, /ConnectionRefused/.test(attacks["secrets:docker-tcp"]!.outcome))).toBe(true);
    const mounts = attacks["secrets:mounts"]!.outcome.split("\n").map((l) => l.split(" ")[4]).filter(Boolean);
    const unexpected = mounts.filter((m) => !/^(\/|\/proc.*|\/dev.*|\/sys.*|\/tmp|\/workspace|\/output|\/etc\/(hosts|resolv\.conf|hostname)|\/(usr\/)?s?bin\/docker-init)$/.test(m!));
    expect(report.add(area("secrets"), "host files outside /workspace and /output", "nothing else mounted", `mounts: ${mounts.filter((m) => !/^\/(proc|dev|sys)/.test(m!)).join(" ")}`, unexpected.length === 0), unexpected.join(",")).toBe(true);
    expect(report.add(area("secrets"), "read /etc/shadow, list /root", "permission denied", `${attacks["secrets:etc-shadow"]!.outcome}; ${attacks["secrets:root-home"]!.outcome}`, /PermissionError/.test(attacks["secrets:etc-shadow"]!.outcome) && /PermissionError/.test(attacks["secrets:root-home"]!.outcome))).toBe(true);
    expect(report.add(area("secrets"), "write into /workspace", "read-only", attacks["secrets:write-workspace"]!.outcome, /Read-only file system/.test(attacks["secrets:write-workspace"]!.outcome))).toBe(true);
    expect(existsSync(join(HERE, "attack.txt"))).toBe(false);
  });

  it("root cannot be gained", () => {
    expect(report.add(area("privilege"), "setuid(0)", "not permitted", attacks["root:setuid-0"]!.outcome, /PermissionError/.test(attacks["root:setuid-0"]!.outcome))).toBe(true);
    expect(report.add(area("privilege"), "su root (setuid binary)", "fails", attacks["root:su"]!.outcome, !attacks["root:su"]!.outcome.startsWith("exit 0"))).toBe(true);
    expect(report.add(area("privilege"), "mount (setuid binary)", "fails", attacks["root:mount"]!.outcome, !attacks["root:mount"]!.outcome.startsWith("exit 0"))).toBe(true);
    const caps = attacks["root:capabilities"]!.outcome;
    expect(report.add(area("privilege"), "capabilities of the agent process", "none (all zero)", caps, caps.split(" ").filter((c) => /^[0-9a-f]{16}$/.test(c)).every((c) => c === "0000000000000000"))).toBe(true);
    expect(report.add(area("privilege"), "no-new-privileges", "set", attacks["root:no-new-privs"]!.outcome, /NoNewPrivs:\s+1/.test(attacks["root:no-new-privs"]!.outcome))).toBe(true);
    expect(report.add(area("privilege"), "user ids", "not root", attacks["root:uid"]!.outcome, !/uid=0 /.test(attacks["root:uid"]!.outcome))).toBe(true);
  });

  it("host processes are invisible", () => {
    const seen = JSON.parse(attacks["host:processes"]!.outcome) as string[];
    const host = seen.filter((c) => /dockerd|containerd|redis|beam|java|vitest|node/.test(c));
    expect(report.add(area("secrets"), "see host processes (/proc)", "only the sandbox's own", seen.join(", "), host.length === 0)).toBe(true);
  });

  it("the init that applied the rules is out of the agent's reach, and holds no NET_ADMIN", () => {
    const none = (o: string) => o === "no root process in the sandbox";
    const caps = attacks["gate:init-capabilities"]!.outcome;
    const noNetAdmin = none(caps) || caps.split("; ").every((p) => p.split(": ")[1]!.split(" ").every((hex) => (BigInt(`0x${hex}`) & (1n << 12n)) === 0n));
    expect(report.add(area("gate"), "capabilities of root processes in the sandbox (the gate's init)", "no NET_ADMIN (or none there)", caps, noNetAdmin), caps).toBe(true);
    for (const [key, label] of [
      ["gate:init-kill", "kill the gate's init"],
      ["gate:init-environ", "read the init's environment (the report's nonce)"],
      ["gate:init-memory", "read the init's memory"],
    ] as const) {
      const o = attacks[key]!.outcome;
      const denied = none(o) || o.split("; ").every((p) => /PermissionError/.test(p));
      expect(report.add(area("gate"), label, "permission denied (or no such process)", o, denied), `${key}: ${o}`).toBe(true);
    }
    const forged = result.denied.some((d) => d.destination.includes("192.0.2.99"));
    expect(report.add(area("report"), "forge lines of the denied-connection report", "ignored (the nonce is unknown)", forged ? "forged entry in the result" : "not in the result", !forged)).toBe(true);
  });

  it("the result lists what the gate refused", () => {
    const denied = result.denied.map((d) => `${d.protocol} ${d.destination}`);
    expect(denied).toEqual(expect.arrayContaining([`tcp ${box.ip}:7001`, `tcp ${victim.ip}:7100`, `udp ${gateway}:53`, `tcp ${gateway}:2375`]));
    report.add(area("report"), "denied-connection report in the result", "lists refused destinations", denied.slice(0, 6).join(", ") + (denied.length > 6 ? ", …" : ""), true);
  });
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
