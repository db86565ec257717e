/**
 * The escape suite's parts that do not depend on what ran the sandbox: the decoys on the host, an
 * agent of another run to aim at, the attacker's run (attack.py) with its targets, and what must hold
 * afterwards. The same for a container gated by airlock's init, by a gate container, and for a
 * Kubernetes Pod; each suite adds the decoy next to its sandbox (a container, a Pod).
 */
import { existsSync } from "node:fs";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { execa } from "execa";
import { expect, it } from "vitest";
import { definePolicy, runAgent, type AgentResult, type Runner } from "../../../runner/index.js";
import { dockerClient } from "../../../runner/internal.js";
import { waitUntil } from "../../../runner/util/wait-until.js";
import { AGENTS, tcpDecoy, tempDir, udpDecoy, type Decoy } from "../helpers.js";
import type { SecurityReport } from "./report.js";

/** The host's address on Docker's default bridge (a decoy listens there). */
export async function dockerBridgeGateway(): Promise<string> {
  const config = (await dockerClient().getNetwork("bridge").inspect()).IPAM?.Config?.[0] as
    | { Gateway?: string }
    | undefined;
  return config?.Gateway ?? "172.17.0.1";
}

/** Decoys on the host: its loopback, its address as the sandbox sees it (`gateway`), Docker's bridge, IPv6. */
export async function hostDecoys(gateway: string, dockerBridge: string): Promise<Record<string, Decoy>> {
  return {
    loopbackTcp: await tcpDecoy("127.0.0.1"),
    loopbackUdp: await udpDecoy("127.0.0.1"),
    gatewayTcp: await tcpDecoy(gateway),
    gatewayAllowedPort: await tcpDecoy(gateway, 6379),
    gatewayUdp: await udpDecoy(gateway),
    gatewayDns: await udpDecoy(gateway, 53),
    dockerBridgeTcp: await tcpDecoy(dockerBridge),
    late: await tcpDecoy(gateway),
    ipv6: await tcpDecoy("::", 0),
  };
}

export interface Victim {
  ip: string;
  /** Stops it (once) and says how many connections reached it. */
  hits(): Promise<number>;
}

/** An agent of another airlock run, listening on 7100 (on the runner's default backend). */
export async function startVictim(): Promise<Victim> {
  const stop = new AbortController();
  let announce: (ip: string) => void;
  const announced = new Promise<string>((r) => (announce = r));
  const result = runAgent({
    agent: join(AGENTS, "victim.ts"),
    policy: definePolicy({ name: "victim", network: { allowedEndpoints: ["localhost:6379"] }, timeoutSeconds: 180 }),
    outputDir: join(await tempDir(), "victim"),
    workingDir: AGENTS,
    signal: stop.signal,
    onEvent: (e) =>
      e.type === "output" && e.line.startsWith("LISTENING ") && announce(e.line.split(" ")[1]!.split(":")[0]!),
  });
  void result.then((r) => announce(`victim ended: ${r.status} ${r.error ?? ""}`));
  const ip = await announced;
  return { ip, hits: async () => ((await (stop.abort(), result)).returnValue as { hits: number }).hits };
}

/** attack.py's targets: every decoy, the sandbox's neighbour, the other run's agent. */
export function attackConfig(t: {
  gateway: string;
  dockerBridge: string;
  decoys: Record<string, Decoy>;
  boxIp: string;
  victimIp: string;
  ipv6?: { id: string; host: string; port: number }[];
}) {
  const { gateway, dockerBridge, decoys, boxIp } = t;
  return {
    gateway,
    allowed: { host: "127.0.0.1", port: 6379 },
    tcp: [
      { id: "other-port-on-allowed-host", host: "127.0.0.1", port: decoys.loopbackTcp!.port },
      { id: "allowed-port-on-other-address", host: gateway, port: 6379 },
      { id: "host-via-airlock-bridge", host: gateway, port: decoys.gatewayTcp!.port },
      { id: "host-via-docker-bridge", host: dockerBridge, port: decoys.dockerBridgeTcp!.port },
      { id: "container-on-same-bridge", host: boxIp, port: 7001 },
      { id: "container-of-another-airlock-run", host: t.victimIp, port: 7100 },
    ],
    udp: [
      { id: "host-loopback", host: "127.0.0.1", port: decoys.loopbackUdp!.port },
      { id: "host-via-airlock-bridge", host: gateway, port: decoys.gatewayUdp!.port },
      { id: "container-on-same-bridge", host: boxIp, port: 7002 },
    ],
    dns: [
      { id: "decoy-dns-on-host", host: gateway, port: 53 },
      { id: "decoy-dns-in-container", host: boxIp, port: 53 },
      { id: "docker-embedded-dns", host: "127.0.0.11", port: 53 },
    ],
    ipv6: [{ id: "loopback", host: "::1", port: decoys.ipv6!.port }, ...(t.ipv6 ?? [])],
    late: { host: gateway, port: decoys.late!.port },
  };
}

/** How the attacker's sandbox comes to be (RunStartup.how): each suite checks it got the path it is about. */
export type AttackPath = "new sandbox" | "pooled sandbox" | "ready gate" | "new container";

/**
 * attack.py run as the agent (a Python agent's process when `language` is python: the runtime's
 * bootstrap runs it as the agent file), with `secret` in the runner's environment; then 5 s for its
 * detached child to try. `path` says which way its sandbox must have come: a pooled sandbox (the
 * runner's warm pool has one of its shape ready: a run just before made sure) mounts no working
 * directory, so attack.py then comes in a variable and runs with `python3 -c`.
 */
export async function runAttacker(
  mode: { image: string; language: "node" | "python"; runner?: Runner; path?: AttackPath },
  cfg: object,
  workspace: string,
  secret: string,
) {
  process.env.AIRLOCK_TEST_HOST_SECRET = secret;
  const outputDir = join(await tempDir(), "attacker");
  const pooled = mode.path === "pooled sandbox";
  const script = pooled ? await readFile(join(workspace, "attack.py"), "utf8") : "";
  const run = (options: Parameters<typeof runAgent>[0]) =>
    mode.runner ? mode.runner.runAgent(options) : runAgent(options);
  const command = pooled
    ? ["python3", "-c", "import os; exec(compile(os.environ['ATTACK_SCRIPT'], 'attack.py', 'exec'))"]
    : mode.language === "python"
      ? ["python3", "-m", "airlock._bootstrap", "/workspace/attack.py"]
      : ["python3", "/workspace/attack.py"];
  const policy = (name: string) =>
    definePolicy({
      name,
      network: { allowedEndpoints: ["localhost:6379"] },
      env: { set: { ATTACK: JSON.stringify(cfg), ...(pooled ? { ATTACK_SCRIPT: script } : {}) } },
      timeoutSeconds: 120,
    });
  if (pooled) {
    // A run of the same shape first: the pool keeps that shape filled from then on.
    await run({
      command: ["true"],
      image: mode.image,
      policy: policy("attacker"),
      outputDir: join(await tempDir(), "first"),
    });
    await waitUntil(async () => (mode.runner!.warmPool?.readyCount() ?? 0) > 0, { timeoutMs: 60_000, intervalMs: 100 });
  }
  const result = await run({
    command,
    image: mode.image,
    policy: policy("attacker"),
    outputDir,
    ...(pooled ? {} : { workingDir: workspace }),
  });
  const attacks = JSON.parse(
    await readFile(join(outputDir, "attacks.json"), "utf8").catch(
      () => `{"error": ${JSON.stringify(result.error ?? result.stdout.slice(-500))}}`,
    ),
  ) as EscapeState["attacks"];
  await new Promise((r) => setTimeout(r, 5000));
  if (mode.path) expect(result.startup?.how, JSON.stringify(result.startup)).toBe(mode.path);
  return { result, attacks, outputDir };
}

export interface EscapeState {
  attacks: Record<string, { outcome: string; ms: number }>;
  result: AgentResult;
  outputDir: string;
  /** The folder mounted at /workspace (it must stay unchanged). */
  workspace: string;
  /** The host's address as the sandbox sees it (the bridge's gateway). */
  gateway: string;
  decoys: Record<string, Decoy>;
  /** A decoy next to the sandbox (a container on its bridge, a Pod on its network). */
  boxIp: string;
  boxHits(): Promise<string[]>;
  /** An agent of another airlock run, listening on 7100: its address and what reached it. */
  victimIp: string;
  victimHits(): Promise<number>;
  /** A value in the runner's environment that the policy does not pass on. */
  secret: string;
  /** What of the attacker's run still exists (containers or Pods). */
  leftovers(): Promise<string[]>;
}

export function escapeChecks(s: () => EscapeState, report: SecurityReport, area: (name: string) => string): void {
  const failedToConnect = (o: string) =>
    !/^(connected|answered|opened|became root|written)$/.test(o) && !o.startsWith("exit 0");

  it("the allowed endpoint answers, before and after the tampering", () => {
    expect(s().result.status, s().result.stderr).toBe("succeeded");
    expect(
      report.add(
        area("control"),
        "TCP to the allowed endpoint localhost:6379",
        "connects",
        s().attacks.allowed!.outcome,
        s().attacks.allowed!.outcome === "connected",
      ),
    ).toBe(true);
    expect(
      report.add(
        area("control"),
        "allowed endpoint, after the tampering attempts",
        "connects",
        s().attacks["after-tampering:allowed"]!.outcome,
        s().attacks["after-tampering:allowed"]!.outcome === "connected",
      ),
    ).toBe(true);
  });

  it.each([
    ["other-port-on-allowed-host", "another port on the allowed host (host loopback)"],
    ["allowed-port-on-other-address", "the allowed port on another address (bridge gateway:6379)"],
    ["host-via-airlock-bridge", "the host's address on airlock's bridge"],
    ["host-via-docker-bridge", "the host's address on Docker's default bridge"],
    ["container-on-same-bridge", "another container on the same bridge"],
    ["container-of-another-airlock-run", "an agent of another airlock run"],
  ])("TCP to %s is refused fast", (id, label) => {
    const a = s().attacks[`tcp:${id}`]!;
    const held = /ConnectionRefused/.test(a.outcome) && a.ms < 1000;
    expect(
      report.add(area("network"), `TCP: ${label}`, "refused in < 1 s", `${a.outcome} (${a.ms} ms)`, held),
      a.outcome,
    ).toBe(true);
  });

  it.each([
    ["host-loopback", "UDP to the host's loopback"],
    ["host-via-airlock-bridge", "UDP to the host on airlock's bridge"],
    ["container-on-same-bridge", "UDP to another container"],
  ])("UDP %s goes nowhere", (id, label) => {
    const a = s().attacks[`udp:${id}`]!;
    expect(report.add(area("network"), label, "not delivered", a.outcome, failedToConnect(a.outcome)), a.outcome).toBe(
      true,
    );
  });

  it("DNS: the system resolver fails at once, and direct queries reach no server", () => {
    const sys = s().attacks["dns:system-resolver"]!;
    expect(
      report.add(
        area("dns"),
        "lookup through the system resolver",
        "fails, no query leaves",
        `${sys.outcome} (${sys.ms} ms)`,
        sys.outcome.startsWith("gaierror") && sys.ms < 3000,
      ),
    ).toBe(true);
    for (const [id, label] of [
      ["decoy-dns-on-host", "query sent straight to a DNS decoy on the host"],
      ["decoy-dns-in-container", "query sent to a DNS decoy in another container"],
      ["docker-embedded-dns", "query to Docker's embedded DNS (127.0.0.11)"],
    ] as const) {
      const a = s().attacks[`dns:${id}`]!;
      expect(report.add(area("dns"), label, "no answer", a.outcome, failedToConnect(a.outcome)), id).toBe(true);
    }
  });

  it("IPv6 reaches nothing", () => {
    for (const [key, a] of Object.entries(s().attacks).filter(([k]) => k.startsWith("ipv6:"))) {
      expect(
        report.add(
          area("network"),
          `IPv6 TCP to ${key.slice(5)} decoy`,
          "fails",
          a.outcome,
          failedToConnect(a.outcome),
        ),
        key,
      ).toBe(true);
    }
  });

  it("ICMP and raw sockets are not available", () => {
    for (const [key, label] of [
      ["icmp:ping", "ping (setuid/file-capability binary)"],
      ["icmp:raw-socket", "raw ICMP socket"],
      ["icmp:datagram-socket", "unprivileged ICMP socket"],
      ["raw:packet-socket", "AF_PACKET socket"],
    ] as const) {
      const a = s().attacks[key]!;
      expect(
        report.add(
          area("network"),
          label,
          "not permitted",
          a.outcome,
          failedToConnect(a.outcome) && /not permitted|PermissionError|exit [12]/i.test(a.outcome),
        ),
        `${key}: ${a.outcome}`,
      ).toBe(true);
    }
  });

  it("no decoy received anything", async () => {
    const hits = Object.entries(s().decoys).map(([name, d]) => `${name}=${d.hits()}`);
    const boxHits = await s().boxHits();
    const victimHits = { hits: await s().victimHits() };
    const held = hits.every((h) => h.endsWith("=0")) && boxHits.length === 0 && victimHits.hits === 0;
    expect(
      report.add(
        area("network"),
        "decoys (host loopback, bridges, DNS, IPv6, container, other run)",
        "0 packets received",
        `${hits.join(" ")} container=${boxHits.length} other-run=${victimHits.hits}`,
        held,
      ),
    ).toBe(true);
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
      const a = s().attacks[key]!;
      expect(report.add(area("gate"), label, "denied", a.outcome, failedToConnect(a.outcome)), key).toBe(true);
    }
    const after = Object.entries(s().attacks).find(([k]) => k.startsWith("after-tampering:tcp:"))![1];
    expect(
      report.add(
        area("gate"),
        "forbidden TCP again, after the tampering attempts",
        "still refused",
        after.outcome,
        /ConnectionRefused/.test(after.outcome),
      ),
    ).toBe(true);
  });

  it("no process outlives the agent", async () => {
    const late = !existsSync(join(s().outputDir, "late.txt")) && s().decoys.late!.hits() === 0;
    const orphans = await execa("pgrep", ["-f", "airlock-late-marker"], { reject: false });
    const leftover = await s().leftovers();
    const held = late && orphans.stdout.trim() === "" && leftover.filter((c) => c.includes("attacker")).length === 0;
    expect(
      report.add(
        area("lifetime"),
        "a detached child that waits, then writes output and connects",
        "killed with the agent",
        `late.txt ${existsSync(join(s().outputDir, "late.txt")) ? "written" : "absent"}, decoy hits ${s().decoys.late!.hits()}, host processes ${orphans.stdout.trim() || "none"}`,
        held,
      ),
    ).toBe(true);
  });

  it("host secrets stay out of reach", () => {
    const env = s().attacks["secrets:environ"]!.outcome;
    const pid1 = s().attacks["secrets:pid1-environ"]!.outcome;
    expect(
      report.add(
        area("secrets"),
        "runner's environment variables the policy does not allow",
        "absent",
        env.includes(s().secret) ? "present" : "absent (environ and /proc/1/environ)",
        !env.includes(s().secret) && !pid1.includes(s().secret),
      ),
    ).toBe(true);
    expect(
      report.add(
        area("secrets"),
        "the Docker socket",
        "not mounted",
        s().attacks["secrets:docker-socket"]!.outcome,
        s().attacks["secrets:docker-socket"]!.outcome === "[]",
      ),
    ).toBe(true);
    expect(
      report.add(
        area("secrets"),
        "the Docker API over TCP (host:2375)",
        "refused",
        s().attacks["secrets:docker-tcp"]!.outcome,
        /ConnectionRefused/.test(s().attacks["secrets:docker-tcp"]!.outcome),
      ),
    ).toBe(true);
    const mounts = s()
      .attacks["secrets:mounts"]!.outcome.split("\n")
      .map((l) => l.split(" ")[4])
      .filter(Boolean);
    // /opt/agent/run: the agent's own bundle folder, read-only (a sandbox mounts it whether or not it holds a bundle);
    // /etc/airlock: the trust files of HTTPS the gate terminates, read-only (a pooled sandbox's is empty until a run that needs them);
    // /run/airlock: the run's refusals so far, which only the runner writes (read-only here).
    const unexpected = mounts.filter(
      (m) =>
        !/^(\/|\/proc.*|\/dev.*|\/sys.*|\/tmp|\/workspace|\/output|\/opt\/agent\/run|\/etc\/airlock|\/run\/airlock|\/etc\/(hosts|resolv\.conf|hostname)|\/(usr\/)?s?bin\/docker-init)$/.test(
          m!,
        ),
    );
    expect(
      report.add(
        area("secrets"),
        "host files outside /workspace and /output",
        "nothing else mounted",
        `mounts: ${mounts.filter((m) => !/^\/(proc|dev|sys)/.test(m!)).join(" ")}`,
        unexpected.length === 0,
      ),
      unexpected.join(","),
    ).toBe(true);
    expect(
      report.add(
        area("secrets"),
        "read /etc/shadow, list /root",
        "permission denied",
        `${s().attacks["secrets:etc-shadow"]!.outcome}; ${s().attacks["secrets:root-home"]!.outcome}`,
        /PermissionError/.test(s().attacks["secrets:etc-shadow"]!.outcome) &&
          /PermissionError/.test(s().attacks["secrets:root-home"]!.outcome),
      ),
    ).toBe(true);
    expect(
      report.add(
        area("secrets"),
        "write into /workspace",
        "read-only",
        s().attacks["secrets:write-workspace"]!.outcome,
        /Read-only file system/.test(s().attacks["secrets:write-workspace"]!.outcome),
      ),
    ).toBe(true);
    expect(existsSync(join(s().workspace, "attack.txt"))).toBe(false);
  });

  it("root cannot be gained", () => {
    expect(
      report.add(
        area("privilege"),
        "setuid(0)",
        "not permitted",
        s().attacks["root:setuid-0"]!.outcome,
        /PermissionError/.test(s().attacks["root:setuid-0"]!.outcome),
      ),
    ).toBe(true);
    expect(
      report.add(
        area("privilege"),
        "su root (setuid binary)",
        "fails",
        s().attacks["root:su"]!.outcome,
        !s().attacks["root:su"]!.outcome.startsWith("exit 0"),
      ),
    ).toBe(true);
    expect(
      report.add(
        area("privilege"),
        "mount (setuid binary)",
        "fails",
        s().attacks["root:mount"]!.outcome,
        !s().attacks["root:mount"]!.outcome.startsWith("exit 0"),
      ),
    ).toBe(true);
    const caps = s().attacks["root:capabilities"]!.outcome;
    expect(
      report.add(
        area("privilege"),
        "capabilities of the agent process",
        "none (all zero)",
        caps,
        caps
          .split(" ")
          .filter((c) => /^[0-9a-f]{16}$/.test(c))
          .every((c) => c === "0000000000000000"),
      ),
    ).toBe(true);
    expect(
      report.add(
        area("privilege"),
        "no-new-privileges",
        "set",
        s().attacks["root:no-new-privs"]!.outcome,
        /NoNewPrivs:\s+1/.test(s().attacks["root:no-new-privs"]!.outcome),
      ),
    ).toBe(true);
    expect(
      report.add(
        area("privilege"),
        "user ids",
        "not root",
        s().attacks["root:uid"]!.outcome,
        !/uid=0 /.test(s().attacks["root:uid"]!.outcome),
      ),
    ).toBe(true);
  });

  it("host processes are invisible", () => {
    const seen = JSON.parse(s().attacks["host:processes"]!.outcome) as string[];
    const host = seen.filter((c) => /dockerd|containerd|redis|beam|java|vitest|node/.test(c));
    expect(
      report.add(
        area("secrets"),
        "see host processes (/proc)",
        "only the sandbox's own",
        seen.join(", "),
        host.length === 0,
      ),
    ).toBe(true);
  });

  it("the init that applied the rules is out of the agent's reach, and holds no NET_ADMIN", () => {
    const none = (o: string) => o === "no root process in the sandbox";
    const caps = s().attacks["gate:init-capabilities"]!.outcome;
    const noNetAdmin =
      none(caps) ||
      caps.split("; ").every((p) =>
        p
          .split(": ")[1]!
          .split(" ")
          .every((hex) => (BigInt(`0x${hex}`) & (1n << 12n)) === 0n),
      );
    expect(
      report.add(
        area("gate"),
        "capabilities of root processes in the sandbox (the gate's init)",
        "no NET_ADMIN (or none there)",
        caps,
        noNetAdmin,
      ),
      caps,
    ).toBe(true);
    for (const [key, label] of [
      ["gate:init-kill", "kill the gate's init"],
      ["gate:init-environ", "read the init's environment (the report's nonce)"],
      ["gate:init-memory", "read the init's memory"],
    ] as const) {
      const o = s().attacks[key]!.outcome;
      const denied = none(o) || o.split("; ").every((p) => /PermissionError/.test(p));
      expect(report.add(area("gate"), label, "permission denied (or no such process)", o, denied), `${key}: ${o}`).toBe(
        true,
      );
    }
    const forged = s().result.denied.some((d) => d.destination.includes("192.0.2.99"));
    expect(
      report.add(
        area("report"),
        "forge lines of the denied-connection report",
        "ignored (the nonce is unknown)",
        forged ? "forged entry in the result" : "not in the result",
        !forged,
      ),
    ).toBe(true);
  });

  it("the result lists what the gate refused", () => {
    const denied = s().result.denied.map((d) => `${d.protocol} ${d.destination}`);
    expect(denied).toEqual(
      expect.arrayContaining([
        `tcp ${s().boxIp}:7001`,
        `tcp ${s().victimIp}:7100`,
        `udp ${s().gateway}:53`,
        `tcp ${s().gateway}:2375`,
      ]),
    );
    report.add(
      area("report"),
      "denied-connection report in the result",
      "lists refused destinations",
      denied.slice(0, 6).join(", ") + (denied.length > 6 ? ", …" : ""),
      true,
    );
  });
}
