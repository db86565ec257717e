/**
 * The egress proxy's terminating mode against real servers on loopback and real HTTP/1.1 and HTTP/2
 * clients: the agent's session ends at the proxy with a certificate from the runner's CA, the
 * policy's header is added on the way out (its value never sent back), a request for another host
 * inside the session is refused (421), a service whose certificate does not verify gets nothing
 * (502), and a streamed answer arrives chunk by chunk as the service sends it.
 */
import { createServer as httpsServer, request as httpsRequest, type Server } from "node:https";
import { connect as h2connect } from "node:http2";
import type { AddressInfo } from "node:net";
import { connect as tlsConnect } from "node:tls";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { issueCertificate, newKeyPair } from "../../runner/gate/https/certificate.js";
import { definePolicy } from "../../runner/policy/index.js";
import { EgressCa } from "../../runner/run/egress-ca.js";
import { HttpsEgress } from "../../runner/run/https-egress.js";

/** A CA and a server certificate for `names`, made with airlock's own certificate code. */
function chain(names: string[]) {
  const caKeys = newKeyPair();
  const issuer = { commonName: "test CA", ...caKeys };
  const now = Date.now();
  const ca = issueCertificate({
    commonName: "test CA",
    ca: true,
    notBefore: new Date(now - 60_000),
    notAfter: new Date(now + 3600_000),
    publicKey: caKeys.publicKey,
    issuer,
  });
  const leaf = newKeyPair();
  const cert = issueCertificate({
    commonName: names[0]!,
    dnsNames: names,
    ca: false,
    notBefore: new Date(now - 60_000),
    notAfter: new Date(now + 3600_000),
    publicKey: leaf.publicKey,
    issuer,
  });
  return { ca, cert, key: leaf.privateKey.export({ type: "pkcs8", format: "pem" }) as string };
}

const SECRET = "sk-test-0123456789";

describe("terminating mode", () => {
  const real = chain(["api.model.test"]);
  const forged = chain(["forged.model.test"]);
  let service: Server, impostor: Server, egress: HttpsEgress;
  const seen: { auth?: string; host?: string; path?: string }[] = [];
  const denials = () => egress.denials().map((d) => `${d.destination} ${d.reason}`);
  const authority = new EgressCa().authority();
  let port: number, proxyPort: number;

  beforeAll(async () => {
    service = httpsServer({ key: real.key, cert: real.cert }, (req, res) => {
      seen.push({ auth: req.headers.authorization, host: req.headers.host, path: req.url });
      if (req.url === "/stream") {
        res.writeHead(200, { "content-type": "text/event-stream" });
        res.write("data: one\n\n");
        setTimeout(() => res.end("data: two\n\n"), 300);
        return;
      }
      res.end(`ok ${req.method} ${req.url}`);
    });
    await new Promise<void>((r) => service.listen(0, "127.0.0.2", r));
    port = (service.address() as AddressInfo).port;
    // The same port on another address, with a certificate from a CA nobody trusts.
    impostor = httpsServer({ key: forged.key, cert: forged.cert }, (_req, res) => res.end("forged"));
    await new Promise<void>((r) => impostor.listen(port, "127.0.0.3", r));
    const policy = definePolicy({
      name: "t",
      network: {
        https: [
          // biome-ignore lint/suspicious/noTemplateCurlyInString: a policy's ${VAR} reference, filled in by the gate
          { host: `api.model.test:${port}`, headers: { Authorization: "Bearer ${MODEL_API_KEY}" } },
          { host: `forged.model.test:${port}`, inspect: true },
        ],
      },
    });
    egress = await HttpsEgress.open("127.0.0.1", [{ port, services: policy.network.https }], {
      resolver: async (name) => (name === "forged.model.test" ? ["127.0.0.3"] : ["127.0.0.2"]),
      terminating: { authority, secrets: { MODEL_API_KEY: SECRET }, upstreamCa: real.ca },
    });
    egress.allow("127.0.0.1");
    proxyPort = egress.ports.ports[0]!;
  });

  afterAll(async () => {
    await egress.close();
    service.close();
    impostor.close();
  });

  /** GET through the proxy over HTTP/1.1: the agent trusts the runner's CA only. */
  const get = (path: string, name = "api.model.test", host = `${name}:${port}`) =>
    new Promise<{ status: number; body: string; chunks: { at: number; text: string }[] }>((resolve, reject) => {
      const started = Date.now();
      const req = httpsRequest(
        {
          host: "127.0.0.1",
          port: proxyPort,
          path,
          servername: name,
          ca: authority.certificate,
          headers: { host },
          agent: false,
        },
        (res) => {
          const chunks: { at: number; text: string }[] = [];
          res.on("data", (d: Buffer) => chunks.push({ at: Date.now() - started, text: d.toString() }));
          res.on("end", () => resolve({ status: res.statusCode!, body: chunks.map((c) => c.text).join(""), chunks }));
        },
      );
      req.on("error", reject);
      req.end();
    });

  it("ends the agent's session with the runner's CA, adds the header, and never hands the secret back", async () => {
    const r = await get("/v1/chat");
    expect(r).toMatchObject({ status: 200, body: "ok GET /v1/chat" });
    expect(seen.at(-1)).toEqual({ auth: `Bearer ${SECRET}`, host: `api.model.test:${port}`, path: "/v1/chat" });
    expect(r.body).not.toContain(SECRET);
  });

  it("speaks HTTP/2 to a client that offers it", async () => {
    const session = h2connect(`https://api.model.test:${port}`, {
      createConnection: () =>
        tlsConnect({
          host: "127.0.0.1",
          port: proxyPort,
          servername: "api.model.test",
          ca: authority.certificate,
          ALPNProtocols: ["h2"],
        }),
    });
    const body = await new Promise<string>((resolve, reject) => {
      const req = session.request({ ":path": "/h2", ":method": "GET" });
      let text = "";
      req.on("data", (d: Buffer) => {
        text += d.toString();
      });
      req.on("end", () => resolve(text));
      req.on("error", reject);
    });
    session.close();
    expect(body).toBe("ok GET /h2");
    expect(seen.at(-1)?.auth).toBe(`Bearer ${SECRET}`);
  });

  it("refuses a request for another host inside the session (fronting by Host) with 421, and records it", async () => {
    const before = seen.length;
    const r = await get("/", "api.model.test", "evil.test");
    expect(r.status).toBe(421);
    expect(r.body).toMatch(/this connection is for api\.model\.test/);
    expect(seen.length).toBe(before);
    expect(denials()).toContain(`api.model.test:${port} host-mismatch`);
  });

  it("sends nothing to a service whose certificate does not verify (502), and records it", async () => {
    const r = await get("/", "forged.model.test");
    expect(r.status).toBe(502);
    expect(r.body).toMatch(/presented a certificate that does not verify/);
    expect(denials()).toContain(`forged.model.test:${port} upstream-certificate`);
  });

  it("passes a streamed answer on as it is sent", async () => {
    const r = await get("/stream");
    expect(r.body).toBe("data: one\n\ndata: two\n\n");
    expect(r.chunks.length).toBeGreaterThanOrEqual(2);
    // The first event arrived well before the second was sent (300 ms later).
    expect(r.chunks[1]!.at - r.chunks[0]!.at).toBeGreaterThan(200);
  });
});
