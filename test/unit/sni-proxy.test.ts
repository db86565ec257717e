/**
 * The pass-through HTTPS proxy against real TLS servers the test starts on loopback: one address
 * serving two names (as every CDN front end does), a second address the name rotates to, and real
 * TLS clients. Nothing leaves loopback.
 */
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync } from "node:fs";
import { connect as netConnect } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { connect as tlsConnect, createServer as tlsServer, type Server } from "node:tls";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type HttpsDenial, SniProxy } from "../../runner/run/sni-proxy.js";
import { realHello } from "./tls-hello.js";

const dir = mkdtempSync(join(tmpdir(), "airlock-sni-"));
execFileSync("openssl", [
  "req",
  "-x509",
  "-newkey",
  "ec",
  "-pkeyopt",
  "ec_paramgen_curve:P-256",
  "-nodes",
  "-days",
  "1",
  "-subj",
  "/CN=api.model.test",
  "-addext",
  "subjectAltName=DNS:api.model.test,DNS:evil.test",
  "-keyout",
  join(dir, "key.pem"),
  "-out",
  join(dir, "cert.pem"),
]);
const key = readFileSync(join(dir, "key.pem"));
const cert = readFileSync(join(dir, "cert.pem"));

/** A TLS server on `host` that answers each request with the name it was asked for and its own address. */
function frontEnd(host: string, port: number): Promise<Server> {
  const server = tlsServer({ key, cert }, (socket) => {
    socket.once("data", () =>
      socket.end(
        `HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n${(socket as { servername?: string }).servername} at ${host}`,
      ),
    );
  });
  return new Promise((resolve) => server.listen(port, host, () => resolve(server)));
}

/** GET / over TLS through the proxy, asking for `servername` (none: no SNI). */
function get(port: number, servername?: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = tlsConnect({
      host: "127.0.0.1",
      port,
      ca: cert,
      ...(servername ? { servername } : { servername: "" }),
      checkServerIdentity: () => undefined,
    });
    let body = "";
    socket.on("secureConnect", () => socket.write("GET / HTTP/1.1\r\nHost: x\r\n\r\n"));
    socket.on("data", (d) => (body += d.toString()));
    socket.on("end", () => resolve(body.split("\r\n\r\n")[1] ?? ""));
    socket.on("error", reject);
  });
}

describe("pass-through HTTPS proxy", () => {
  let a: Server;
  let b: Server;
  let proxy: SniProxy;
  const denied: HttpsDenial[] = [];
  let resolutions = 0;

  beforeAll(async () => {
    a = await frontEnd("127.0.0.1", 0);
    const port = (a.address() as { port: number }).port;
    b = await frontEnd("127.0.0.2", port);
    proxy = await SniProxy.listen("127.0.0.1", {
      port,
      services: [{ host: "api.model.test" }, { host: "*.blob.model.test" }],
      // The name rotates between two addresses; any other name does not resolve.
      resolver: async (name) => {
        if (name !== "api.model.test") throw new Error("ENOTFOUND");
        return [resolutions++ % 2 === 0 ? "127.0.0.1" : "127.0.0.2"];
      },
      onDenied: (d) => denied.push(d),
      helloTimeoutMs: 300,
    });
    proxy.allow("127.0.0.1");
  });

  afterAll(async () => {
    await proxy.close();
    a.close();
    b.close();
  });

  it("lets a listed name through, resolved on the host each time (DNS rotation just works)", async () => {
    expect(await get(proxy.port, "api.model.test")).toBe("api.model.test at 127.0.0.1");
    expect(await get(proxy.port, "api.model.test")).toBe("api.model.test at 127.0.0.2");
  });

  it("refuses another name on the same front end at once, with a TLS alert and a reason", async () => {
    const t = performance.now();
    await expect(get(proxy.port, "evil.test")).rejects.toThrow(/unrecognized name|alert/i);
    expect(performance.now() - t).toBeLessThan(2000);
    expect(denied.at(-1)).toMatchObject({ name: "evil.test", reason: "not-listed" });
  });

  it("refuses a connection that names no server, and plain HTTP with a 403", async () => {
    await expect(get(proxy.port)).rejects.toThrow();
    expect(denied.at(-1)).toMatchObject({ reason: "no-sni" });
    const answer = await new Promise<string>((resolve) => {
      const s = netConnect(proxy.port, "127.0.0.1", () => s.write("GET / HTTP/1.1\r\nHost: api.model.test\r\n\r\n"));
      let got = "";
      s.on("data", (d) => (got += d.toString()));
      s.on("close", () => resolve(got));
    });
    expect(answer).toMatch(/^HTTP\/1\.1 403 Forbidden/);
    expect(denied.at(-1)).toMatchObject({ reason: "plain-http" });
  });

  it("does not wait forever for a hello", async () => {
    const closed = await new Promise<boolean>((resolve) => {
      const s = netConnect(proxy.port, "127.0.0.1", () => s.write(Buffer.from([0x16, 3, 1, 0, 200, 1])));
      s.on("error", () => {});
      s.resume();
      s.on("close", () => resolve(true));
    });
    expect(closed).toBe(true);
    expect(denied.at(-1)).toMatchObject({ reason: "timeout" });
  }, 5000);

  it("never forwards a hello completed after its time ran out", async () => {
    const hello = await realHello("api.model.test");
    const before = resolutions;
    const answer = await new Promise<string>((resolve) => {
      // Half-open: the client keeps its side open after the proxy's answer, and goes on sending.
      const s = netConnect({ port: proxy.port, host: "127.0.0.1", allowHalfOpen: true }, () => {
        // A listed name's hello, its last byte after the time limit.
        s.write(hello.subarray(0, hello.length - 1));
        setTimeout(() => s.write(hello.subarray(hello.length - 1)), 500);
      });
      let got = Buffer.alloc(0);
      s.on("data", (d: Buffer) => (got = Buffer.concat([got, d])));
      s.on("error", () => {});
      // Long enough for a forward to have started, and for the proxy to have cut the connection.
      setTimeout(() => {
        s.destroy();
        resolve(got.toString("hex"));
      }, 1500);
    });
    // A fatal handshake_failure alert (40), and no upstream was ever looked up.
    expect(answer).toBe("15030300020228");
    expect(resolutions).toBe(before);
  }, 5000);

  it("tells an allowed name that does not resolve at once", async () => {
    await expect(get(proxy.port, "x.blob.model.test")).rejects.toThrow();
    expect(denied.at(-1)).toMatchObject({ name: "x.blob.model.test", reason: "upstream" });
  }, 5000);

  it("serves only the agent addresses it was told", async () => {
    const reset = await new Promise<string>((resolve) => {
      const s = netConnect({ port: proxy.port, host: "127.0.0.1", localAddress: "127.0.0.3" });
      s.on("error", (e: NodeJS.ErrnoException) => resolve(e.code ?? "error"));
      s.on("close", () => resolve("closed"));
    });
    expect(["ECONNRESET", "closed"]).toContain(reset);
  });
});

describe("a port that serves one name", () => {
  it("connects upstream while the hello arrives, and sends it nothing before the name is checked", async () => {
    const { createServer } = await import("node:net");
    // A plain TCP upstream that records what each connection received.
    const seen: { bytes: number; closed: boolean }[] = [];
    const upstream = createServer((s) => {
      const entry = { bytes: 0, closed: false };
      seen.push(entry);
      s.on("data", (d: Buffer) => (entry.bytes += d.length));
      s.on("close", () => (entry.closed = true));
      s.on("error", () => {});
    });
    await new Promise<void>((r) => upstream.listen(0, "127.0.0.1", () => r()));
    const port = (upstream.address() as { port: number }).port;
    const denied: HttpsDenial[] = [];
    const proxy = await SniProxy.listen("127.0.0.1", {
      port,
      services: [{ host: "api.model.test" }],
      resolver: async () => ["127.0.0.1"],
      onDenied: (d) => denied.push(d),
      helloTimeoutMs: 300,
    });
    proxy.allow("127.0.0.1");
    const send = (hello: Buffer, wait = 400) =>
      new Promise<void>((resolve) => {
        const s = netConnect(proxy.port, "127.0.0.1", () => s.write(hello));
        s.on("error", () => {});
        s.resume();
        setTimeout(() => (s.destroy(), resolve()), wait);
      });
    try {
      await send(await realHello("evil.test"));
      expect(denied.at(-1)).toMatchObject({ name: "evil.test", reason: "not-listed" });
      // The early connection was opened, received nothing, and was closed.
      await new Promise((r) => setTimeout(r, 100));
      expect(seen).toEqual([{ bytes: 0, closed: true }]);
      const hello = await realHello("api.model.test");
      await send(hello);
      expect(seen[1]!.bytes).toBe(hello.length);
      // A hello that never completes: nothing upstream either.
      await send(hello.subarray(0, 20), 700);
      await new Promise((r) => setTimeout(r, 100));
      expect(seen[2]).toEqual({ bytes: 0, closed: true });
      expect(denied.at(-1)).toMatchObject({ reason: "timeout" });
    } finally {
      await proxy.close();
      upstream.close();
    }
  }, 10_000);
});
