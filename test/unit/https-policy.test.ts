/**
 * HTTPS services by name, from the policy to the gate: what network.https accepts and refuses (with
 * the field and the fix), how the plan routes the listed names (the agent's own 127.0.0.1, one
 * proxy port per service port), and the rules that take those ports and DNS to the egress proxy.
 */
import { describe, expect, it } from "vitest";
import { compareRulesets } from "../../runner/gate/compare-rules.js";
import { enforcementFor } from "../../runner/gate/enforce.js";
import { fixFor } from "../../runner/run/https-egress.js";
import { definePolicy, parsePolicy } from "../../runner/policy/index.js";
import { PolicyError } from "../../runner/errors.js";

const problems = (yaml: string) => {
  try {
    parsePolicy(yaml, "p.yaml");
  } catch (err) {
    if (err instanceof PolicyError) return err.issues.map((i) => `${i.field}: ${i.message} | ${i.fix}`);
    throw err;
  }
  return [];
};

describe("network.https in a policy", () => {
  it("takes names, name:port and one wildcard label, and turns the network on", () => {
    const policy = definePolicy({
      name: "ai",
      network: { https: ["API.model.test", "api.model.test", "api.model.test:8443", "*.blob.example.com"] },
    });
    expect(policy.network.disabled).toBe(false);
    expect(policy.network.https.map((s) => [s.host, s.port, s.wildcard])).toEqual([
      ["api.model.test", 443, false],
      ["api.model.test", 8443, false],
      ["*.blob.example.com", 443, true],
    ]);
  });

  it("refuses what cannot be checked by name, naming the entry and the fix", () => {
    const out = problems(
      "name: p\nnetwork:\n  https:\n    - https://api.model.test/v1\n    - 10.0.0.5\n    - '*.com'\n    - 'a.*.example.com'\n    - api.model.test:99999\n",
    );
    expect(out).toEqual([
      expect.stringMatching(
        /^network\.https\[0\]: "https:\/\/api\.model\.test\/v1" is a URL.*\| write only the host .*: api\.model\.test$/,
      ),
      expect.stringMatching(/^network\.https\[1\]: "10\.0\.0\.5" is an IP address.*\| .*network\.allowedEndpoints/),
      expect.stringMatching(/^network\.https\[2\]: "\*\.com" is a wildcard too wide/),
      expect.stringMatching(/^network\.https\[3\]: .*not one whole label at the left/),
      expect.stringMatching(/^network\.https\[4\]: port "99999"/),
    ]);
  });

  it("refuses a name that is also an L4 endpoint, and a port that is also a localhost endpoint", () => {
    const out = problems(
      "name: p\nnetwork:\n  allowedEndpoints: [api.model.test:9000, localhost:443]\n  https: [api.model.test]\n",
    );
    expect(out).toEqual([
      expect.stringMatching(
        /network\.https\[0\]: api\.model\.test is also in allowedEndpoints.*\| remove api\.model\.test:9000/,
      ),
      expect.stringMatching(
        /network\.https\[0\]: port 443 is also localhost:443.*\| serve the host's service on another port/,
      ),
    ]);
  });

  it("refuses https with the network disabled", () => {
    expect(problems("name: p\nnetwork:\n  disabled: true\n  https: [api.model.test]\n")).toEqual([
      expect.stringMatching(/^network\.disabled: is true but https lists 1 service/),
    ]);
  });
});

describe("what the gate enforces for HTTPS by name", () => {
  const policy = definePolicy({
    name: "ai",
    network: {
      allowedEndpoints: ["localhost:6379"],
      https: ["api.model.test", "*.blob.example.com", "api.model.test:8443"],
    },
  });

  it("points exact names at the agent's own loopback, and routes each port to a proxy port", async () => {
    const e = await enforcementFor(policy, async () => []);
    expect(e.hostsFile).toMatch(/^127\.0\.0\.1\tapi\.model\.test$/m);
    expect(e.hostsFile).not.toMatch(/blob/);
    expect(e.plan.https.map((r) => [r.port, r.services.map((s) => s.host)])).toEqual([
      [443, ["api.model.test", "*.blob.example.com"]],
      [8443, ["api.model.test"]],
    ]);
    const f = { address: "172.30.0.1", ports: [41000], https: { ports: [42000, 42001], dns: 42002 } };
    const v4 = e.rules(f).v4;
    expect(v4).toContain(
      "-A OUTPUT -d 127.0.0.1/32 -p tcp -m tcp --dport 443 -j DNAT --to-destination 172.30.0.1:42000",
    );
    expect(v4).toContain(
      "-A OUTPUT -d 127.0.0.1/32 -p tcp -m tcp --dport 8443 -j DNAT --to-destination 172.30.0.1:42001",
    );
    expect(v4).toContain(
      "-A OUTPUT -d 127.0.0.1/32 -p udp -m udp --dport 53 -j DNAT --to-destination 172.30.0.1:42002",
    );
    expect(v4).toContain(
      "-A OUTPUT -d 172.30.0.1/32 -p udp -m udp --dport 42002 -m conntrack --ctstate NEW --ctorigdst 127.0.0.1/32 --ctorigdstport 53 -j ACCEPT",
    );
    expect(e.egress(f)).toEqual([
      { ip: "172.30.0.1", port: 41000 },
      { ip: "172.30.0.1", port: 42000 },
      { ip: "172.30.0.1", port: 42001 },
      { ip: "172.30.0.1", port: 42002, protocol: "udp" },
    ]);
    // What iptables-save prints for the UDP rules compares equal to what was sent.
    const saved = v4.replace(/-p udp -m udp --dport (\d+)/g, "-p udp --dport $1");
    expect(compareRulesets(v4, saved)).toBeUndefined();
  });

  it("refuses a backend that opened fewer proxy ports than the plan has routes", async () => {
    const e = await enforcementFor(policy, async () => []);
    expect(() => e.rules({ address: "172.30.0.1", ports: [41000] })).toThrow(
      /2 HTTPS routes need as many proxy ports, got 0/,
    );
  });

  it("has no DNS and no proxy route without network.https", async () => {
    const e = await enforcementFor(definePolicy({ name: "b", network: { allowedEndpoints: ["localhost:6379"] } }));
    const v4 = e.rules({ address: "172.30.0.1", ports: [41000] }).v4;
    expect(v4).not.toMatch(/udp.*53/);
  });
});

describe("the policy line a refusal names", () => {
  it("says what to add for an unlisted name, and why nothing can allow the rest", () => {
    expect(fixFor({ name: "evil.test", port: 443, reason: "not-listed" })).toBe("add evil.test to network.https");
    expect(fixFor({ name: "evil.test", port: 8443, reason: "not-listed" })).toBe("add evil.test:8443 to network.https");
    expect(fixFor({ port: 443, reason: "no-sni" })).toMatch(/^none can: the client must send the service's name/);
    expect(fixFor({ port: 443, reason: "plain-http" })).toMatch(/use https:\/\//);
  });
});

describe("network.https entries the gate terminates", () => {
  it("takes host with headers or inspect, and marks them terminated", () => {
    const policy = parsePolicy(
      // biome-ignore lint/suspicious/noTemplateCurlyInString: a policy's ${VAR} reference, filled in by the gate
      'name: ai\nnetwork:\n  https:\n    - registry.npmjs.org\n    - host: api.model.test:8443\n      headers:\n        Authorization: "Bearer ${MODEL_API_KEY}"\n    - host: "*.blob.example.com"\n      inspect: true\n',
    );
    expect(policy.network.https.map((s) => [s.host, s.port, s.terminate, s.headers])).toEqual([
      ["registry.npmjs.org", 443, false, []],
      // biome-ignore lint/suspicious/noTemplateCurlyInString: a policy's ${VAR} reference, filled in by the gate
      ["api.model.test", 8443, true, [{ name: "Authorization", value: "Bearer ${MODEL_API_KEY}" }]],
      ["*.blob.example.com", 443, true, []],
    ]);
  });

  it("refuses a header variable that env also passes into the sandbox, and headers the gate must not set", () => {
    const out = problems(
      // biome-ignore lint/suspicious/noTemplateCurlyInString: a policy's ${VAR} reference, filled in by the gate
      'name: p\nnetwork:\n  https:\n    - host: api.model.test\n      headers:\n        Authorization: "Bearer ${MODEL_API_KEY}"\n        Host: evil.test\n        X-Bad: "${AIRLOCK_RUN_ID}"\nenv:\n  allow: [MODEL_API_KEY]\n',
    );
    expect(out).toEqual(
      expect.arrayContaining([
        expect.stringMatching(
          /^env\.allow: MODEL_API_KEY is a secret the gate adds to api\.model\.test .*\| remove MODEL_API_KEY from env\.allow/,
        ),
        expect.stringMatching(/^network\.https\[0\]\.headers\.Host: Host is the request's own/),
        expect.stringMatching(/^network\.https\[0\]\.headers\.X-Bad: .*AIRLOCK_ variables are airlock's own/),
      ]),
    );
  });

  it("takes header values from runAgent's env, else the caller's, and names a missing one with the fix", async () => {
    const { headerSecrets } = await import("../../runner/run/https-trust.js");
    const policy = definePolicy({
      name: "ai",
      // biome-ignore lint/suspicious/noTemplateCurlyInString: a policy's ${VAR} reference, filled in by the gate
      network: { https: [{ host: "api.model.test", headers: { Authorization: "Bearer ${MODEL_API_KEY}" } }] },
    });
    expect(headerSecrets(policy, { MODEL_API_KEY: "given" }, { MODEL_API_KEY: "host" })).toEqual({
      MODEL_API_KEY: "given",
    });
    expect(headerSecrets(policy, undefined, { MODEL_API_KEY: "host" })).toEqual({ MODEL_API_KEY: "host" });
    expect(() => headerSecrets(policy, undefined, {})).toThrow(
      /adds Authorization with \$\{MODEL_API_KEY\}, which is not set/,
    );
  });
});
