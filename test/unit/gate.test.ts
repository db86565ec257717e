import { execFileSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { createServer, connect, type AddressInfo } from "node:net";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { LoopbackForwarder } from "../../runner/run/loopback-forwarder.js";
import { hostsFile, planGate, RESOLV_CONF } from "../../runner/gate/plan.js";
import { ipv4Rules, ipv6Rules } from "../../runner/gate/rules.js";
import { parseEndpoint } from "../../runner/policy/endpoint.js";
import { enforcementFor } from "../../runner/gate/enforce.js";
import { definePolicy } from "../../runner/policy/index.js";

const resolver = async (host: string) =>
  ({ "kafka.example.com": ["10.1.0.7", "10.1.0.8"], "loop.example.com": ["127.0.1.1"] })[host] ??
  Promise.reject(new Error("ENOTFOUND"));

describe("gate plan", () => {
  it("routes loopback endpoints to the host forwarder and pins DNS names to host-resolved addresses", async () => {
    const plan = await planGate(
      {
        allowedEndpoints: [
          "localhost:6379",
          "127.0.0.1:6379",
          "10.0.0.5:5672",
          "kafka.example.com:9092",
          "loop.example.com:7000",
        ].map(parseEndpoint),
        https: [],
      },
      "p.yaml",
      resolver,
    );
    expect(plan.loopback.map((l) => [l.port, l.target])).toEqual([
      [6379, { host: "127.0.0.1", port: 6379 }],
      [7000, { host: "127.0.1.1", port: 7000 }],
    ]);
    expect(plan.direct.map((d) => `${d.ip}:${d.port}`)).toEqual(["10.0.0.5:5672", "10.1.0.7:9092", "10.1.0.8:9092"]);
    expect(hostsFile(plan)).toBe(
      "127.0.0.1\tlocalhost\n# names from the policy, resolved by the airlock runner\n10.1.0.7\tkafka.example.com\n127.0.0.1\tloop.example.com\n",
    );
  });

  it("fails with the name and the policy file when a name does not resolve", async () => {
    await expect(
      planGate({ allowedEndpoints: [parseEndpoint("nowhere.invalid:1")], https: [] }, "policies/p.yaml", resolver),
    ).rejects.toThrow(/"nowhere.invalid" \(from policies\/p.yaml\) does not resolve/);
  });

  it("gives the agent a resolver that cannot reach any DNS server", () => {
    expect(RESOLV_CONF).toMatch(/^nameserver 127\.0\.0\.1$/m);
  });
});

describe("what a policy makes every backend enforce", () => {
  const policy = definePolicy({
    name: "p",
    network: { allowedEndpoints: ["localhost:6379", "kafka.example.com:9092"] },
  });

  it("gives the rules and the egress list for where the backend's forwarders listen", async () => {
    const enforcement = await enforcementFor(policy, resolver);
    expect(enforcement.disabled).toBe(false);
    expect(enforcement.hostsFile).toMatch(/^10\.1\.0\.7\tkafka\.example\.com$/m);
    const forwarders = { address: "172.18.0.1", ports: [40001] };
    expect(enforcement.rules(forwarders)).toEqual({
      v4: ipv4Rules({
        gateway: "172.18.0.1",
        forwarded: [{ port: 6379, forwarderPort: 40001 }],
        direct: [
          { ip: "10.1.0.7", port: 9092 },
          { ip: "10.1.0.8", port: 9092 },
        ],
      }),
      v6: ipv6Rules(),
    });
    expect(enforcement.egress(forwarders)).toEqual([
      { ip: "172.18.0.1", port: 40001 },
      { ip: "10.1.0.7", port: 9092 },
      { ip: "10.1.0.8", port: 9092 },
    ]);
    // A backend that opened a forwarder too few (or too many) is a bug, not a gate with a hole.
    expect(() => enforcement.rules({ address: "172.18.0.1", ports: [] })).toThrow(/1 loopback routes/);
  });

  it("allows nothing but loopback when the policy disables the network, and resolves nothing", async () => {
    const enforcement = await enforcementFor(definePolicy({ name: "off", network: { disabled: true } }), async () =>
      Promise.reject(new Error("must not resolve")),
    );
    expect(enforcement.hostsFile).toBe("127.0.0.1\tlocalhost\n");
    const rules = enforcement.rules({ address: "10.0.0.1", ports: [] });
    // Every ACCEPT is for loopback or for replies: no destination is let out.
    expect(rules.v4).toContain("-A OUTPUT -o lo -j ACCEPT");
    expect(rules.v4.split("\n").filter((l) => l.endsWith("-j ACCEPT") && !/ -[io] lo |ESTABLISHED/.test(l))).toEqual(
      [],
    );
    expect(enforcement.egress({ address: "10.0.0.1", ports: [] })).toEqual([]);
  });

  it("is the only place that turns a policy into rules (both backends call it)", () => {
    const callers = ["backends/docker/gate/open-gate.ts", "backends/kubernetes/kube-run.ts"];
    const root = join(import.meta.dirname, "../../runner");
    for (const file of callers) expect(readFileSync(join(root, file), "utf8")).toMatch(/enforcementFor\(/);
    const elsewhere = execFileSync("grep", ["-rlE", "planGate\\(|ipv4Rules\\(", root], { encoding: "utf8" })
      .split("\n")
      .filter(Boolean)
      .map((f) => f.slice(root.length + 1))
      .sort();
    expect(elsewhere).toEqual(["gate/enforce.ts", "gate/plan.ts", "gate/rules.ts"]);
  });
});

describe("iptables rules", () => {
  const rules = ipv4Rules({
    gateway: "172.18.0.1",
    forwarded: [{ port: 6379, forwarderPort: 40001 }],
    direct: [{ ip: "10.0.0.5", port: 5672 }],
  });

  it("denies by default in every chain", () => {
    expect(rules).toContain(":INPUT DROP");
    expect(rules).toContain(":OUTPUT DROP");
    expect(rules).toContain(":FORWARD DROP");
  });

  it("counts refused connections per destination before refusing them", () => {
    const out = rules.split("\n");
    const tcpCount = out.findIndex((l) => l.includes("--hashlimit-name airlock_tcp"));
    expect(tcpCount).toBeGreaterThan(-1);
    expect(out[tcpCount]).not.toContain(" -j ");
    expect(out[tcpCount + 1]).toBe("-A OUTPUT -p tcp -j REJECT --reject-with tcp-reset");
    expect(
      out.some((l) => l.includes("--hashlimit-name airlock_udp") && l.includes("--hashlimit-mode dstip,dstport")),
    ).toBe(true);
  });

  it("allows exactly the host side of the agent's own localhost port and the direct endpoints, then refuses the rest fast", () => {
    const accepts = rules
      .split("\n")
      .filter((l) => l.startsWith("-A OUTPUT") && l.includes("--ctstate NEW") && l.endsWith("-j ACCEPT"));
    expect(accepts).toEqual([
      // Only connections DNATed from 127.0.0.1:6379: a direct connection to the gateway's port is refused.
      "-A OUTPUT -d 172.18.0.1/32 -p tcp -m tcp --dport 40001 -m conntrack --ctstate NEW --ctorigdst 127.0.0.1/32 --ctorigdstport 6379 -j ACCEPT",
      "-A OUTPUT -d 10.0.0.5/32 -p tcp -m tcp --dport 5672 -m conntrack --ctstate NEW -j ACCEPT",
    ]);
    const filter = rules.slice(rules.indexOf("*filter"));
    expect(filter.indexOf("--reject-with tcp-reset")).toBeGreaterThan(filter.lastIndexOf("-j ACCEPT"));
    expect(filter.trim().split("\n").slice(-2)).toEqual([
      "-A OUTPUT -j REJECT --reject-with icmp-port-unreachable",
      "COMMIT",
    ]);
  });

  it("DNATs the agent's 127.0.0.1:PORT to the forwarder and blocks Docker's embedded DNS", () => {
    expect(rules).toContain(
      "-A OUTPUT -d 127.0.0.1/32 -p tcp -m tcp --dport 6379 -j DNAT --to-destination 172.18.0.1:40001",
    );
    expect(rules).toContain("-A POSTROUTING -s 127.0.0.0/8 ! -o lo -j MASQUERADE");
    expect(rules.indexOf("-d 127.0.0.11/32 -j REJECT")).toBeLessThan(rules.indexOf("-A OUTPUT -o lo -j ACCEPT"));
  });

  it("lets nothing out over IPv6", () => {
    const v6 = ipv6Rules();
    expect(v6).toContain(":OUTPUT DROP");
    expect(v6.split("\n").filter((l) => l.includes("ACCEPT") && !l.startsWith(":"))).toEqual([
      "-A INPUT -i lo -j ACCEPT",
      "-A OUTPUT -o lo -j ACCEPT",
    ]);
  });
});

describe("loopback forwarder", () => {
  async function echoServer() {
    const server = createServer((s) => s.pipe(s));
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    return server;
  }
  function roundTrip(port: number, address: string, local?: string): Promise<string> {
    return new Promise((resolve) => {
      const s = connect({ host: address, port, ...(local ? { localAddress: local } : {}) });
      let got = "";
      s.on("connect", () => s.write("ping"));
      s.on("data", (d) => {
        got += d.toString();
        s.end();
      });
      s.on("close", () => resolve(got || "closed"));
      s.on("error", (e: NodeJS.ErrnoException) => resolve(e.code ?? "error"));
    });
  }

  it("forwards only for allowed source addresses", async () => {
    const echo = await echoServer();
    const target = { host: "127.0.0.1", port: (echo.address() as AddressInfo).port };
    const fwd = await LoopbackForwarder.listen("127.0.0.1", target);
    try {
      expect(await roundTrip(fwd.port, "127.0.0.1")).not.toBe("ping");
      expect(fwd.stats.rejected).toBe(1);
      fwd.allow("127.0.0.1");
      expect(await roundTrip(fwd.port, "127.0.0.1")).toBe("ping");
      expect(fwd.stats.accepted).toBe(1);
    } finally {
      await fwd.close();
      echo.close();
    }
  });

  it("resets the client when the target refuses, and stops on close", async () => {
    const probe = createServer();
    await new Promise<void>((r) => probe.listen(0, "127.0.0.1", r));
    const deadPort = (probe.address() as AddressInfo).port;
    probe.close();
    const fwd = await LoopbackForwarder.listen("127.0.0.1", { host: "127.0.0.1", port: deadPort });
    fwd.allow("127.0.0.1");
    expect(await roundTrip(fwd.port, "127.0.0.1")).toMatch(/ECONNRESET|closed/);
    expect(fwd.stats.failed).toBe(1);
    const port = fwd.port;
    await fwd.close();
    await fwd.close();
    expect(await roundTrip(port, "127.0.0.1")).toBe("ECONNREFUSED");
  });
});

describe("denied-connection report", () => {
  it("turns hashlimit tables into destinations and exact counts", async () => {
    const { parseHashlimit } = await import("../../runner/gate/denied.js");
    const cost = 494780230800000000n;
    const cap = cost * 30n;
    const table = [
      `86397 0.0.0.0:0->10.0.0.9:6380 ${cap - 3n * cost} ${cap} ${cost}`,
      `86397 0.0.0.0:0->10.0.0.9:6381 0 ${cap} ${cost}`,
      "garbage",
    ].join("\n");
    expect(parseHashlimit(table, "tcp")).toEqual([
      { destination: "10.0.0.9:6380", protocol: "tcp", count: 3 },
      { destination: "10.0.0.9:6381", protocol: "tcp", count: 30, countAtLeast: true },
    ]);
    expect(parseHashlimit(`1 0.0.0.0:0->10.0.0.9:0 ${cap - cost} ${cap} ${cost}`, "other")).toEqual([
      { destination: "10.0.0.9", protocol: "other", count: 1 },
    ]);
  });
});

describe("in-container gate: the runner's side of the init", () => {
  const hostSide = {
    gatewayPorts: [],
    filtered: false,
    denials: () => [],
    allow: async () => {},
    close: async () => {},
  };
  const verifier = { verify: async () => {} };
  const gateFor = async (rules = { v4: "*filter\nCOMMIT\n", v6: "x" }, user = { uid: 1000, gid: 100 }) => {
    const { InitEgressGate } = await import("../../runner/backends/docker/gate/init-gate.js");
    return new InitEgressGate({ rules, user, networkName: "airlock", hostSide, verifier });
  };

  it("sends rules, uid:gid and a fresh nonce on one line", async () => {
    const line = (await gateFor()).rulesLine();
    const [v4, v6, uid, gid, nonce, ...rest] = line.trimEnd().split(" ");
    expect(Buffer.from(v4!, "base64").toString()).toBe("*filter\nCOMMIT\n");
    expect(Buffer.from(v6!, "base64").toString()).toBe("x");
    expect([uid, gid, rest]).toEqual(["1000", "100", []]);
    expect(nonce).toMatch(/^[0-9a-f]{32}$/);
    expect((await gateFor()).rulesLine()).not.toContain(nonce!);
  });

  it("takes only lines with its own nonce: applied, the report and the exit code; forged lines stay agent output", async () => {
    const gate = await gateFor();
    const nonce = gate.rulesLine().trimEnd().split(" ")[4]!;
    const cost = 10n,
      cap = 300n;
    const tag = (s: string) => `\u001eairlock-gate ${nonce} ${s}`;
    const forged = `\u001eairlock-gate ${"0".repeat(32)} 1 0.0.0.0:0->192.0.2.1:1 ${cap - cost} ${cap} ${cost}`;
    expect(gate.intercept(forged)).toBe(false);
    expect(gate.intercept("plain output")).toBe(false);
    expect(gate.intercept(tag("applied legacy"))).toBe(true);
    for (const l of [
      "== airlock_tcp",
      `1 0.0.0.0:0->10.0.0.9:6380 ${cap - 2n * cost} ${cap} ${cost}`,
      "== airlock_udp",
      "== airlock_other",
      "== airlock_lo",
    ])
      expect(gate.intercept(tag(l))).toBe(true);
    expect(gate.intercept(tag("end 3"))).toBe(true);
    // Lines after the end cannot add to the report.
    expect(gate.intercept(tag(`1 0.0.0.0:0->10.0.0.9:9999 0 ${cap} ${cost}`))).toBe(true);
    await expect(gate.exited).resolves.toBe(3);
    if (process.getuid?.() !== 0)
      expect(await gate.collect({ code: 3, stderr: "" })).toEqual([
        { destination: "10.0.0.9:6380", protocol: "tcp", count: 2 },
      ]);
  });

  it("recognises the init's own failure (exit 125 with its words), and nothing else", async () => {
    const { InitEgressGate } = await import("../../runner/backends/docker/gate/init-gate.js");
    expect(InitEgressGate.failure(125, "airlock-init: iptables-restore failed\n")?.message).toContain(
      "the egress gate failed before the agent started: airlock-init: iptables-restore failed",
    );
    expect(InitEgressGate.failure(125, "an agent that exits 125 itself\n")).toBeUndefined();
    expect(InitEgressGate.failure(1, "airlock-init: something\n")).toBeUndefined();
    // Once the init said the agent ran and exited, 125 is the agent's own code.
    expect(InitEgressGate.failure(125, "airlock-init: something\n", true)).toBeUndefined();
  });
});

describe("host side of localhost endpoints", () => {
  it("uses kernel DNAT as root on Linux, the forwarder otherwise, and obeys AIRLOCK_LOOPBACK", async () => {
    const { loopbackMode } = await import("../../runner/backends/docker/gate/host-side.js");
    expect(loopbackMode({ AIRLOCK_LOOPBACK: "forwarder" })).toBe("forwarder");
    expect(loopbackMode({ AIRLOCK_LOOPBACK: "kernel" })).toBe("kernel");
    expect(loopbackMode({})).toBe(process.getuid?.() === 0 && process.platform === "linux" ? "kernel" : "forwarder");
  });

  it("opens on the host exactly the agent's loopback ports and direct endpoints, from its own port on the bridge", async () => {
    const { hostRules } = await import("../../runner/backends/docker/gate/host-side.js");
    const bridge = { id: "net-1", gateway: "172.30.0.1", interface: "airlock0" };
    const plan = {
      loopback: [{ port: 6379, target: { host: "127.0.0.1", port: 6379 }, endpoint: parseEndpoint("localhost:6379") }],
      direct: [{ ip: "10.0.0.5", port: 5672, endpoint: parseEndpoint("10.0.0.5:5672") }],
    };
    const peer = { ip: "172.30.0.9", mac: "02:42:ac:1e:00:09" };
    const from = ["-s", "172.30.0.9/32", "-m", "mac", "--mac-source", "02:42:ac:1e:00:09"];
    const tag = ["-m", "comment", "--comment", expect.stringMatching(/run-1$/)];
    const accept = (chain: string, dst: string, port: string, origin: string[] = []) => ({
      table: "filter",
      rule: ["-A", chain, ...from, "-d", dst, "-p", "tcp", "-m", "tcp", "--dport", port, "-m", "conntrack"].concat([
        "--ctstate",
        "NEW",
        ...origin,
        ...tag,
        "-j",
        "ACCEPT",
      ]),
    });
    const direct = [
      accept("AIRLOCK-AGENTS-IN", "10.0.0.5/32", "5672"),
      accept("AIRLOCK-AGENTS-FWD", "10.0.0.5/32", "5672"),
    ];
    const kernel = hostRules({ mode: "kernel", bridge, plan, gatewayPorts: [6379], peer, runId: "run-1" });
    expect(kernel).toEqual([
      {
        table: "nat",
        rule: [
          "-A",
          "AIRLOCK-LOOPBACK",
          ...from,
          "-d",
          "172.30.0.1/32",
          "-i",
          "airlock0",
          "-p",
          "tcp",
          "-m",
          "tcp",
        ].concat(["--dport", "6379", ...tag, "-j", "DNAT", "--to-destination", "127.0.0.1:6379"]),
      },
      accept("AIRLOCK-AGENTS-IN", "127.0.0.1/32", "6379", ["--ctorigdst", "172.30.0.1", "--ctorigdstport", "6379"]),
      ...direct,
    ]);
    const forwarder = hostRules({ mode: "forwarder", bridge, plan, gatewayPorts: [41000], peer, runId: "run-1" });
    expect(forwarder).toEqual([accept("AIRLOCK-AGENTS-IN", "172.30.0.1/32", "41000"), ...direct]);
    // A broker whose refusals are read off its connections (MQTT) has a forwarder on the kernel path too.
    const tapped = hostRules({
      mode: "kernel",
      forwarded: [true],
      bridge,
      plan,
      gatewayPorts: [41001],
      peer,
      runId: "run-1",
    });
    expect(tapped).toEqual([accept("AIRLOCK-AGENTS-IN", "172.30.0.1/32", "41001"), ...direct]);
    // HTTPS by name: the egress proxy's port and its DNS answerer's, on the gateway, on either path.
    const named = hostRules({
      mode: "kernel",
      bridge,
      plan: { loopback: [], direct: [] },
      gatewayPorts: [],
      https: { ports: [42000], dns: 42001 },
      peer,
      runId: "run-1",
    });
    const udp = accept("AIRLOCK-AGENTS-IN", "172.30.0.1/32", "42001");
    udp.rule = udp.rule.map((t) => (t === "tcp" ? "udp" : t));
    expect(named).toEqual([accept("AIRLOCK-AGENTS-IN", "172.30.0.1/32", "42000"), udp]);
  });
});
