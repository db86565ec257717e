/**
 * HTTPS services the gate terminates (network.https with headers / inspect), attacked on a real
 * engine with real TLS servers this test starts on loopback: the agent calls the model API trusting
 * nothing but what the sandbox trusts by default (airlock's CA, mounted for the run), the gate adds
 * the API key, and the agent then looks for that key everywhere it can read — its environment,
 * every process's, its files — and for the CA's private key; it also tries fronting by Host inside
 * a session for the listed name, and calls a listed name whose server presents a forged
 * certificate. From an image airlock built, a derived image (gate container) and a warm sandbox.
 */
import { createPrivateKey, createPublicKey, X509Certificate } from "node:crypto";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { definePolicy, type AgentResult, type Runner } from "../../../runner/index.js";
import { leftoverContainers } from "../helpers.js";
import { namedServer, testChain, type NamedServer } from "../tls-servers.js";
import { PATHS, runnerFor, runProbe, suiteName, type Outcomes } from "./https-paths.js";
import { SecurityReport } from "./report.js";

const report = new SecurityReport(suiteName("6b-https-terminating", "8c-kubernetes-https-terminating"));

describe.each(PATHS)("HTTPS terminated at the gate, from $label", ({ path, label }) => {
  const chain = testChain(["api.model.test", "forged.model.test"]);
  const forgedChain = testChain(["forged.model.test"], "a CA nobody trusts");
  const secret = `sk-airlock-test-${Date.now()}-${Math.random().toString(36).slice(2)}`;
  let api: NamedServer, forged: NamedServer;
  let runner: Runner;
  let result: AgentResult;
  let outcomes: Outcomes;
  let out: string;

  beforeAll(async () => {
    api = await namedServer("api", "127.0.0.2", chain);
    forged = await namedServer("forged", "127.0.0.3", forgedChain, api.port);
    const port = api.port;
    const resolver = async (host: string) => (host === "forged.model.test" ? ["127.0.0.3"] : ["127.0.0.2"]);
    runner = runnerFor(path);
    const probes = [
      { id: "terminated", kind: "https", host: "api.model.test", port, systemTrust: true },
      { id: "host-fronting", kind: "https", host: "api.model.test", port, systemTrust: true, hostHeader: "evil.test" },
      { id: "forged", kind: "https", host: "forged.model.test", port, systemTrust: true },
    ];
    const policy = definePolicy({
      name: "https-terminating",
      network: {
        https: [
          // biome-ignore lint/suspicious/noTemplateCurlyInString: a policy's ${VAR} reference, filled in by the gate
          { host: `api.model.test:${port}`, headers: { Authorization: "Bearer ${MODEL_API_KEY}" } },
          { host: `forged.model.test:${port}`, inspect: true },
        ],
      },
      env: { set: { HTTPS_PROBES: JSON.stringify(probes), HTTPS_LOOK_AROUND: "1" } },
      timeoutSeconds: 120,
    });
    ({ result, outcomes, out } = await runProbe({
      path,
      runner,
      policy,
      options: { resolver, upstreamCa: chain.ca, env: { MODEL_API_KEY: secret } },
      beforeMeasured: () => {
        api.seen.length = 0;
      },
    }));
  }, 600_000);

  afterAll(async () => {
    await runner?.close();
    await Promise.all([api?.close(), forged?.close()]);
    report.save();
  });

  const row = (attempt: string, expected: string, observed: string, held: boolean) =>
    expect(report.add(`https terminated (${label})`, attempt, expected, observed, held), observed).toBe(true);

  it("calls the API trusting only the sandbox's defaults, and the gate adds the key on the way out", () => {
    const o = outcomes.terminated!;
    const got = api.seen.at(-1);
    row(
      "GET https://api.model.test (headers: Authorization from the caller)",
      "the service answers; it got the key, the agent's request did not carry it",
      `${o.outcome} ${o.body ?? ""}; the service saw ${got?.authorization === `Bearer ${secret}` ? "the key" : String(got?.authorization)}`,
      o.outcome === "HTTP 200" &&
        o.body?.startsWith("api sni=api.model.test") === true &&
        got?.authorization === `Bearer ${secret}`,
    );
  });

  it("refuses a request for another host inside the session (fronting by Host) with 421", () => {
    const o = outcomes["host-fronting"]!;
    row(
      "Host: evil.test inside a TLS session for api.model.test",
      "HTTP 421 from airlock; nothing reaches the service",
      `${o.outcome} ${o.body ?? ""}`,
      o.outcome === "HTTP 421" && !api.seen.some((s) => s.host === "evil.test"),
    );
  });

  it("sends nothing to a listed name whose server presents a forged certificate (502)", () => {
    const o = outcomes.forged!;
    row(
      "a listed name answered by a server with a certificate from another CA",
      "HTTP 502 from airlock; the request is not sent",
      `${o.outcome} ${o.body ?? ""}`,
      o.outcome === "HTTP 502" && forged.seen.length === 0,
    );
  });

  it("never shows the key to the agent: not in its environment, any process's, any file it can read, or an answer", async () => {
    const seen = await readFile(join(out, "seen.txt"), "latin1");
    const answers = JSON.stringify(outcomes);
    row(
      "look for the API key in env, /proc/*/environ, /proc/*/cmdline, every readable file, the proxy's answers",
      "not found",
      `searched ${(seen.length / 1e6).toFixed(1)} MB: ${seen.includes(secret) || answers.includes(secret) ? "FOUND" : "not found"}`,
      seen.length > 100_000 && !seen.includes(secret) && !answers.includes(secret),
    );
  });

  it("never gives the agent the CA's private key: the CA it trusts has no key it can read", async () => {
    const seen = await readFile(join(out, "seen.txt"), "latin1");
    const caPem =
      /== \/etc\/airlock\/egress-ca\.pem\n(-----BEGIN CERTIFICATE-----[\s\S]*?-----END CERTIFICATE-----)/.exec(
        seen,
      )?.[1];
    expect(caPem, "the sandbox trusts airlock's CA from /etc/airlock").toBeDefined();
    const caKey = new X509Certificate(caPem!).publicKey.export({ type: "spki", format: "der" }).toString("hex");
    const keys = [
      ...seen.matchAll(/-----BEGIN (?:EC |RSA )?PRIVATE KEY-----[\s\S]*?-----END (?:EC |RSA )?PRIVATE KEY-----/g),
    ];
    const matching = keys.filter((k) => {
      try {
        return (
          createPublicKey(createPrivateKey(k[0])).export({ type: "spki", format: "der" }).toString("hex") === caKey
        );
      } catch {
        return false;
      }
    });
    row(
      "find a private key for airlock's CA anywhere readable",
      "none",
      `${keys.length} private key(s) readable, ${matching.length} of them the CA's`,
      matching.length === 0,
    );
  });

  it("reports the refusals with their reasons", () => {
    const named = result.denied.filter((d) => d.protocol === "https").map((d) => `${d.destination} ${d.reason}`);
    row(
      "the run's denied report",
      "host-mismatch and upstream-certificate, each with its fix",
      JSON.stringify(named),
      named.includes(`api.model.test:${api.port} host-mismatch`) &&
        named.includes(`forged.model.test:${api.port} upstream-certificate`),
    );
  });

  it("leaves nothing behind", async () => {
    await runner.close();
    expect(await leftoverContainers()).toEqual([]);
  });
});
