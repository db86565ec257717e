/**
 * HTTPS services by name, attacked on a real engine with real TLS servers this test starts on
 * loopback: the policy lists api.model.test and *.blob.model.test; the agent tries every way past
 * the name check that a user would worry about (another name on the same address, no name, an IP,
 * plain HTTP, a name one label too deep) and the name's address changing between two requests.
 * Each path an agent can run on is attacked: a sandbox of an image airlock built (its init gates
 * it), a derived image (a gate container), and a pooled sandbox from the warm pool.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { definePolicy, type AgentResult, type Runner } from "../../../runner/index.js";
import { leftoverContainers } from "../helpers.js";
import { namedServer, testChain, type NamedServer } from "../tls-servers.js";
import { PATHS, runnerFor, runProbe, suiteName, type Outcomes } from "./https-paths.js";
import { SecurityReport } from "./report.js";

const report = new SecurityReport(suiteName("6-https", "8b-kubernetes-https"));
/** What the proxy's refusals look like to a Node TLS client: a TLS alert, at once. */
const TLS_ALERT = /^ERR_SSL_TLSV1_(UNRECOGNIZED_NAME|ALERT_ACCESS_DENIED|ALERT_HANDSHAKE_FAILURE)$/;

describe.each(PATHS)("HTTPS by name, from $label", ({ path, label }) => {
  const chain = testChain(["api.model.test", "*.blob.model.test", "evil.test", "other.model.test"]);
  let first: NamedServer, second: NamedServer;
  let runner: Runner;
  let result: AgentResult;
  let outcomes: Outcomes;
  let resolutions = 0;

  beforeAll(async () => {
    // Two servers of the same names on two loopback addresses, on the same port: the name's
    // address "rotates" from the first to the second after the first connection to it.
    first = await namedServer("first", "127.0.0.2", chain);
    second = await namedServer("second", "127.0.0.3", chain, first.port);
    const port = first.port;
    const resolver = async (host: string) => {
      if (host === "api.model.test") return resolutions++ === 0 ? ["127.0.0.2"] : ["127.0.0.3"];
      if (host.endsWith(".model.test") || host === "evil.test") return ["127.0.0.2"];
      throw new Error(`ENOTFOUND ${host}`);
    };
    runner = runnerFor(path);
    const https = (id: string, host: string, extra: object = {}) => ({ id, kind: "https", host, port, ...extra });
    const probes = [
      https("listed", "api.model.test"),
      https("rotated", "api.model.test"),
      https("wildcard", "files.blob.model.test"),
      https("sni-fronting", "evil.test", { connectTo: "api.model.test" }),
      https("unlisted-same-address", "other.model.test", { connectTo: "api.model.test" }),
      https("too-deep", "a.b.blob.model.test", { connectTo: "api.model.test" }),
      https("no-sni", "api.model.test", { servername: "" }),
      https("ip-literal", "127.0.0.2"),
      https("ip-in-sni", "10.0.0.1", { connectTo: "api.model.test" }),
      { id: "plain-http", kind: "http", host: "api.model.test", port },
      { id: "dns-unlisted", kind: "dns", name: "secret-data.evil.test" },
      { id: "dns-wildcard", kind: "dns", name: "x1.blob.model.test" },
    ];
    const policy = definePolicy({
      name: "https-probe",
      network: { https: [`api.model.test:${port}`, `*.blob.model.test:${port}`] },
      env: { set: { HTTPS_PROBES: JSON.stringify(probes), HTTPS_TEST_CA: chain.ca } },
      timeoutSeconds: 120,
    });
    ({ result, outcomes } = await runProbe({
      path,
      runner,
      policy,
      options: { resolver },
      beforeMeasured: () => {
        resolutions = 0;
        first.seen.length = 0;
      },
    }));
  }, 600_000);

  afterAll(async () => {
    await runner?.close();
    await Promise.all([first?.close(), second?.close()]);
    report.save();
  });

  const row = (attempt: string, expected: string, observed: string, held: boolean) =>
    expect(report.add(`https by name (${label})`, attempt, expected, observed, held), observed).toBe(true);

  it("reaches a listed name, end to end with the service's own certificate, resolved by the host", () => {
    const o = outcomes.listed!;
    row(
      "GET https://api.model.test (listed)",
      "the service answers",
      `${o.outcome} ${o.body ?? ""}`,
      o.body === `first sni=api.model.test host=api.model.test:${first.port}`,
    );
  });

  it("follows the name when its address changes mid-run (DNS rotation)", () => {
    const o = outcomes.rotated!;
    row(
      "the name's address changes between two requests",
      "the second request reaches the new address",
      `${o.outcome} ${o.body ?? ""}`,
      o.body?.startsWith("second sni=api.model.test") === true,
    );
  });

  it("reaches one label under a listed wildcard, through the run's DNS answers", () => {
    const o = outcomes.wildcard!;
    const dns = outcomes["dns-wildcard"]!;
    row(
      "GET https://files.blob.model.test (under *.blob.model.test)",
      "the service answers",
      `${o.outcome} ${o.body ?? ""}; lookup: ${dns.outcome}`,
      o.body?.startsWith("first sni=files.blob.model.test") === true && dns.outcome === "resolved 127.0.0.1",
    );
  });

  it("refuses another name sent to a listed name's address (fronting by SNI), at once", () => {
    for (const id of ["sni-fronting", "unlisted-same-address", "too-deep"]) {
      const o = outcomes[id]!;
      row(
        `${id}: TLS to api.model.test's address asking for another name`,
        "a TLS alert at once; nothing reaches a server",
        `${o.outcome} in ${o.ms} ms`,
        TLS_ALERT.test(o.outcome) && o.ms < 3000,
      );
    }
    expect(first.seen.concat(second.seen).map((s) => s.sni)).not.toContain("evil.test");
    expect(first.seen.concat(second.seen).map((s) => s.sni)).not.toContain("other.model.test");
  });

  it("refuses a connection that names no server, and an IP address", () => {
    const noSni = outcomes["no-sni"]!;
    row(
      "TLS with no SNI",
      "a TLS alert at once",
      `${noSni.outcome} in ${noSni.ms} ms`,
      TLS_ALERT.test(noSni.outcome) && noSni.ms < 3000,
    );
    const inSni = outcomes["ip-in-sni"]!;
    row(
      "TLS to api.model.test's address asking for an IP address (SNI 10.0.0.1)",
      "a TLS alert at once",
      `${inSni.outcome} in ${inSni.ms} ms`,
      TLS_ALERT.test(inSni.outcome) && inSni.ms < 3000,
    );
    const ip = outcomes["ip-literal"]!;
    row(
      "GET https://127.0.0.2 (the service's address)",
      "refused: an address is not a name",
      `${ip.outcome} in ${ip.ms} ms`,
      ip.outcome === "ECONNREFUSED" && ip.ms < 3000,
    );
  });

  it("answers plain HTTP on the HTTPS port with 403 and an explanation", () => {
    const o = outcomes["plain-http"]!;
    row(
      "plain HTTP to the listed name's port",
      "HTTP 403 from airlock",
      `${o.outcome} ${o.body ?? ""}`,
      o.outcome === "HTTP 403" && /airlock: plain HTTP/.test(o.body ?? ""),
    );
  });

  it("resolves no other name: a lookup is answered NXDOMAIN by the gate and asks no one", () => {
    const o = outcomes["dns-unlisted"]!;
    row(
      "DNS lookup of an unlisted name (data in the name)",
      "not found at once",
      `${o.outcome} in ${o.ms} ms`,
      o.outcome === "ENOTFOUND" && o.ms < 3000,
    );
  });

  it("reports every refusal with its reason and the policy line to add", () => {
    const named = result.denied.filter((d) => d.protocol === "https" || d.protocol === "dns");
    const find = (destination: string, reason: string) =>
      named.find((d) => d.destination === destination && d.reason === reason);
    const port = first.port;
    const expected = [
      find(`evil.test:${port}`, "not-listed")?.fix === `add evil.test:${port} to network.https`,
      find(`other.model.test:${port}`, "not-listed") !== undefined,
      find(`a.b.blob.model.test:${port}`, "not-listed") !== undefined,
      find(`(no name):${port}`, "no-sni")?.fix?.startsWith("none can") === true,
      find(`(no name):${port}`, "plain-http") !== undefined,
      find("secret-data.evil.test", "not-listed")?.protocol === "dns",
    ];
    row(
      "the run's denied report",
      "each refusal with its reason and fix",
      JSON.stringify(named.map((d) => `${d.destination} ${d.reason}`)),
      expected.every(Boolean),
    );
  });

  it("leaves nothing behind", async () => {
    await runner.close();
    expect(await leftoverContainers()).toEqual([]);
  });
});
