/**
 * The egress gate, on a real engine: the allowed endpoint answers, and every forbidden path is
 * really attempted by the agent and fails, with decoys (started here) confirming nothing reached them.
 */
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createRunner, definePolicy, type AgentResult, type Runner } from "../../runner/index.js";
import { defaultRunner } from "../../runner/internal.js";
import {
  AGENTS,
  bridgeGateway,
  leftoverContainers,
  tcpDecoy,
  tempDir,
  udpDecoy,
  type Decoy,
  type Probe,
} from "./helpers.js";

type Outcomes = Record<string, { outcome: string; ms: number; reply?: string }>;

async function probe(
  probes: Probe[],
  network: { allowedEndpoints: string[] } | { disabled: true },
  outputDir?: string,
  runner?: Runner,
): Promise<{ result: AgentResult; outcomes: Outcomes }> {
  const dir = outputDir ?? join(await tempDir(), "out");
  const result = await (runner ?? defaultRunner()).runAgent({
    agent: join(AGENTS, "probe.ts"),
    policy: definePolicy({
      name: "probe",
      network,
      env: { set: { PROBES: JSON.stringify(probes) } },
      timeoutSeconds: 60,
    }),
    outputDir: dir,
    workingDir: AGENTS,
  });
  expect(result.status, result.stderr || result.error).toBe("succeeded");
  const value = result.returnValue as { results: Outcomes };
  return { result, outcomes: value.results };
}

describe("egress gate (policy allows only localhost:6379)", () => {
  let gateway: string;
  const decoys: Decoy[] = [];
  let loopbackTcp: Decoy,
    gatewayTcp: Decoy,
    gatewayOnAllowedPort: Decoy | undefined,
    loopbackUdp: Decoy,
    gatewayUdp: Decoy,
    gatewayDns: Decoy | undefined;
  let outcomes: Outcomes;
  let result: AgentResult;

  beforeAll(async () => {
    gateway = await bridgeGateway();
    decoys.push((loopbackTcp = await tcpDecoy("127.0.0.1")));
    decoys.push((gatewayTcp = await tcpDecoy(gateway)));
    decoys.push((loopbackUdp = await udpDecoy("127.0.0.1")));
    decoys.push((gatewayUdp = await udpDecoy(gateway)));
    // The allowed port, on another address of the host (Redis itself is bound to 127.0.0.1 only).
    gatewayOnAllowedPort = await tcpDecoy(gateway, 6379).catch(() => undefined);
    if (gatewayOnAllowedPort) decoys.push(gatewayOnAllowedPort);
    gatewayDns = await udpDecoy(gateway, 53).catch(() => undefined);
    if (gatewayDns) decoys.push(gatewayDns);
    const probes: Probe[] = [
      { id: "allowed", kind: "tcp", host: "localhost", port: 6379, send: "PING\r\n" },
      { id: "allowed-ip", kind: "tcp", host: "127.0.0.1", port: 6379, send: "PING\r\n" },
      { id: "other-port-loopback", kind: "tcp", host: "127.0.0.1", port: loopbackTcp.port },
      { id: "other-host-gateway", kind: "tcp", host: gateway, port: gatewayTcp.port },
      { id: "allowed-port-other-address", kind: "tcp", host: gateway, port: 6379 },
      { id: "udp-loopback", kind: "udp", host: "127.0.0.1", port: loopbackUdp.port },
      { id: "udp-gateway", kind: "udp", host: gateway, port: gatewayUdp.port },
      { id: "dns-system-resolver", kind: "dns-lookup", name: "example.com" },
      { id: "dns-docker-embedded", kind: "dns-query", host: "127.0.0.11", port: 53 },
      { id: "dns-direct-to-decoy", kind: "dns-query", host: gateway, port: 53 },
      { id: "ipv6-loopback", kind: "tcp", host: "::1", port: 6379 },
      { id: "ipv6-link-local", kind: "tcp", host: "fe80::1%eth0", port: gatewayTcp.port },
    ];
    ({ outcomes, result } = await probe(probes, { allowedEndpoints: ["localhost:6379"] }));
  });

  afterAll(async () => {
    await Promise.all(decoys.map((d) => d.close()));
  });

  it("lets the agent reach the allowed endpoint as localhost:6379 and 127.0.0.1:6379", () => {
    expect(outcomes.allowed).toMatchObject({ outcome: "connected", reply: expect.stringMatching(/^-NOAUTH/) });
    expect(outcomes["allowed-ip"]).toMatchObject({ outcome: "connected", reply: expect.stringMatching(/^-NOAUTH/) });
  });

  it.each(["other-port-loopback", "other-host-gateway", "allowed-port-other-address"])("refuses TCP %s fast", (id) => {
    expect(outcomes[id]!.outcome).toBe("ECONNREFUSED");
    expect(outcomes[id]!.ms).toBeLessThan(1000);
  });

  it("lets no UDP out", () => {
    expect(outcomes["udp-loopback"]!.outcome).not.toBe("answered");
    expect(outcomes["udp-gateway"]!.outcome).not.toBe("answered");
  });

  it("resolves no names: the system resolver fails, Docker's embedded DNS and a direct query are blocked", () => {
    expect(outcomes["dns-system-resolver"]!.outcome).toMatch(/^(ENOTFOUND|EAI_AGAIN|ECONNREFUSED)$/);
    expect(outcomes["dns-system-resolver"]!.ms).toBeLessThan(5000);
    expect(outcomes["dns-docker-embedded"]!.outcome).not.toBe("answered");
    expect(outcomes["dns-direct-to-decoy"]!.outcome).not.toBe("answered");
  });

  it("has no IPv6", () => {
    expect(outcomes["ipv6-loopback"]!.outcome).not.toBe("connected");
    expect(outcomes["ipv6-link-local"]!.outcome).not.toBe("connected");
  });

  it("no decoy received anything", () => {
    expect(decoys.map((d) => `${d.host}:${d.port}=${d.hits()}`)).toEqual(decoys.map((d) => `${d.host}:${d.port}=0`));
    expect(gatewayOnAllowedPort, "decoy on the allowed port of another address").toBeDefined();
  });

  it("runs the agent without any capability, as a non-root user", () => {
    const value = result.returnValue as { caps: Record<string, string>; uid: number };
    for (const key of ["CapEff", "CapPrm", "CapBnd", "CapAmb", "CapInh"])
      expect(value.caps[key], key).toBe("0000000000000000");
    expect(value.uid).not.toBe(0);
  });

  it("positive control: the same decoy counts a connection when the policy allows it", async () => {
    const { outcomes: allowed } = await probe(
      [{ id: "decoy", kind: "tcp", host: gateway, port: gatewayTcp.port, send: "hi\n" }],
      { allowedEndpoints: [`${gateway}:${gatewayTcp.port}`] },
    );
    expect(allowed.decoy).toMatchObject({ outcome: "connected", reply: "DECOY" });
    expect(gatewayTcp.hits()).toBe(1);
  });

  it("removes both containers", async () => {
    expect(await leftoverContainers()).toEqual([]);
  });
});

describe("network disabled", () => {
  it("reaches nothing, not even the local Redis", async () => {
    const { outcomes } = await probe(
      [
        { id: "redis", kind: "tcp", host: "127.0.0.1", port: 6379 },
        { id: "dns", kind: "dns-lookup", name: "example.com" },
      ],
      { disabled: true },
    );
    expect(outcomes.redis!.outcome).toBe("ECONNREFUSED");
    expect(outcomes.dns!.outcome).not.toMatch(/^resolved/);
  });
});

describe("the host side of localhost endpoints", () => {
  // As root the runner uses kernel DNAT on the airlock bridge (the path every other test here takes);
  // any other runner uses the user-space forwarder. Both must behave the same.
  it.each(["kernel", "forwarder"] as const)(
    "%s: the allowed port answers as the host's loopback; the gateway's own port and other ports are refused",
    async (mode) => {
      if (mode === "kernel" && process.getuid?.() !== 0) return;
      const gateway = await bridgeGateway();
      const decoy = await tcpDecoy(gateway);
      const runner = createRunner({ loopback: mode });
      try {
        const { outcomes, result } = await probe(
          [
            { id: "allowed", kind: "tcp", host: "localhost", port: 6379, send: "PING\r\n" },
            { id: "gateway-same-port", kind: "tcp", host: gateway, port: 6379 },
            { id: "gateway-other-port", kind: "tcp", host: gateway, port: decoy.port },
          ],
          { allowedEndpoints: ["localhost:6379"] },
          undefined,
          runner,
        );
        // The real (locked-down) Redis answers: NOAUTH, as to any client without credentials.
        expect(
          outcomes.allowed,
          JSON.stringify({ outcomes, denied: result.denied, startup: result.startup }),
        ).toMatchObject({ outcome: "connected", reply: expect.stringMatching(/^-NOAUTH/) });
        expect(outcomes["gateway-same-port"]!.outcome).toBe("ECONNREFUSED");
        expect(outcomes["gateway-other-port"]!.outcome).toBe("ECONNREFUSED");
        expect(decoy.hits()).toBe(0);
      } finally {
        await runner.close();
        await decoy.close();
      }
    },
  );
});
