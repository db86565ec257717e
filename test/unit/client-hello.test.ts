/**
 * The egress proxy's first decision, from the ClientHello alone: real hellos (Node's OpenSSL client
 * connecting to a capture server on loopback) and hand-built ones for what real clients rarely send
 * (an Encrypted Client Hello, two names, a hello split over records, one that never ends).
 */
import { describe, expect, it } from "vitest";
import { MAX_HELLO_BYTES, readClientHello } from "../../runner/gate/https/client-hello.js";
import { decideByName, nameMatches } from "../../runner/gate/https/names.js";
import { listedNameProblem } from "../../runner/policy/https-service.js";
import { realHello } from "./tls-hello.js";

/** A ClientHello built by hand: these extensions (type, data), in TLS records of at most `recordSize` bytes. */
function builtHello(extensions: [number, Buffer][], recordSize = 16384): Buffer {
  const u16 = (n: number) => Buffer.from([n >> 8, n & 0xff]);
  const ext = Buffer.concat(extensions.map(([t, d]) => Buffer.concat([u16(t), u16(d.length), d])));
  const body = Buffer.concat([
    Buffer.from([3, 3]),
    Buffer.alloc(32, 7),
    Buffer.from([0]),
    u16(2),
    Buffer.from([0x13, 0x01]),
    Buffer.from([1, 0]),
    u16(ext.length),
    ext,
  ]);
  const handshake = Buffer.concat([
    Buffer.from([1, body.length >> 16, (body.length >> 8) & 0xff, body.length & 0xff]),
    body,
  ]);
  const records: Buffer[] = [];
  for (let at = 0; at < handshake.length; at += recordSize) {
    const part = handshake.subarray(at, at + recordSize);
    records.push(Buffer.concat([Buffer.from([0x16, 3, 1]), u16(part.length), part]));
  }
  return Buffer.concat(records);
}

const sniExt = (...names: string[]): [number, Buffer] => {
  const entries = Buffer.concat(
    names.map((n) => Buffer.concat([Buffer.from([0, n.length >> 8, n.length & 0xff]), Buffer.from(n)])),
  );
  return [0, Buffer.concat([Buffer.from([entries.length >> 8, entries.length & 0xff]), entries])];
};

describe("reading a ClientHello", () => {
  it("finds the name and the protocols a real TLS client asks for", async () => {
    const bytes = await realHello("API.Model.test", ["h2", "http/1.1"]);
    const read = readClientHello(bytes);
    expect(read).toMatchObject({
      state: "complete",
      hello: { sni: "api.model.test", alpn: ["h2", "http/1.1"], ech: false },
    });
    // Every byte of it, until the hello is whole, is only "partial": nothing is decided early.
    for (const cut of [1, 5, 40, bytes.length - 1])
      expect(readClientHello(bytes.subarray(0, cut)).state).toBe("partial");
  });

  it("sees no name when a client connects to an address (TLS sends no IP as SNI)", async () => {
    const read = readClientHello(await realHello(undefined));
    expect(read.state).toBe("complete");
    if (read.state === "complete") expect(read.hello.sni).toBeUndefined();
  });

  it("reassembles a hello split over several records, and counts the bytes to replay", () => {
    const whole = builtHello([sniExt("split.example.com"), [0x0029, Buffer.alloc(3000, 1)]], 700);
    const read = readClientHello(Buffer.concat([whole, Buffer.from("application data that follows")]));
    expect(read).toMatchObject({ state: "complete", hello: { sni: "split.example.com" }, length: whole.length });
  });

  it("marks an Encrypted Client Hello, refuses two names, and answers plain HTTP as such", () => {
    const ech = readClientHello(builtHello([sniExt("public.example.com"), [0xfe0d, Buffer.alloc(200, 2)]]));
    expect(ech).toMatchObject({ state: "complete", hello: { sni: "public.example.com", ech: true } });
    expect(readClientHello(builtHello([sniExt("a.example.com", "evil.test")]))).toMatchObject({
      state: "invalid",
      reason: "malformed",
    });
    expect(readClientHello(builtHello([sniExt("a.example.com"), sniExt("evil.test")]))).toMatchObject({
      state: "invalid",
      reason: "malformed",
    });
    expect(readClientHello(Buffer.from("GET / HTTP/1.1\r\nHost: api.model.test\r\n\r\n"))).toMatchObject({
      state: "invalid",
      reason: "plain-http",
    });
    expect(readClientHello(Buffer.from("SSH-2.0-OpenSSH_9.2\r\n"))).toMatchObject({
      state: "invalid",
      reason: "not-tls",
    });
  });

  it("gives up at its bound instead of waiting for a hello that never ends", () => {
    const huge = builtHello([sniExt("a.example.com"), [0x0015, Buffer.alloc(MAX_HELLO_BYTES, 0)]]);
    expect(readClientHello(huge.subarray(0, 9))).toMatchObject({ state: "invalid", reason: "too-large" });
    // Lengths that point past what was sent are malformed, never read beyond the buffer.
    const lying = builtHello([sniExt("a.example.com")]);
    lying.writeUInt16BE(0xffff, lying.length - "a.example.com".length - 5);
    expect(readClientHello(lying)).toMatchObject({ state: "invalid", reason: "malformed" });
  });

  it("survives random bytes after a valid record header (fuzzing: only ever a bounded verdict)", () => {
    for (let i = 0; i < 2000; i++) {
      const junk = Buffer.from(
        Array.from({ length: 5 + Math.floor(Math.random() * 600) }, () => Math.floor(Math.random() * 256)),
      );
      junk[0] = 0x16;
      junk[1] = 3;
      const read = readClientHello(junk);
      expect(["partial", "invalid", "complete"]).toContain(read.state);
    }
  });
});

describe("HTTPS services by name", () => {
  const services = [{ host: "api.model.test" }, { host: "*.blob.example.com" }];
  const hello = (sni?: string, ech = false) => ({ ...(sni ? { sni } : {}), alpn: [], ech });

  it("allows a listed name and one label under a wildcard, nothing wider", () => {
    expect(decideByName(hello("api.model.test"), services)).toMatchObject({ allow: { host: "api.model.test" } });
    expect(decideByName(hello("x.blob.example.com"), services)).toMatchObject({
      allow: { host: "*.blob.example.com" },
    });
    for (const name of ["a.b.blob.example.com", "blob.example.com", "evil.test", "api.model.test.evil.test"])
      expect(decideByName(hello(name), services)).toMatchObject({ refuse: "not-listed", name });
    expect(nameMatches("xblob.example.com", "*.blob.example.com")).toBe(false);
  });

  it("refuses no SNI, an IP literal and an Encrypted Client Hello, each with its reason", () => {
    expect(decideByName(hello(), services)).toMatchObject({ refuse: "no-sni" });
    expect(decideByName(hello("10.0.0.1"), services)).toMatchObject({ refuse: "ip-literal" });
    expect(decideByName(hello("api.model.test", true), services)).toMatchObject({ refuse: "ech" });
    expect(decideByName(hello("api_model.test"), services)).toMatchObject({ refuse: "not-a-name" });
  });

  it("says why a name cannot be listed", () => {
    expect(listedNameProblem("api.model.test")).toBeUndefined();
    expect(listedNameProblem("*.blob.example.com")).toBeUndefined();
    expect(listedNameProblem("*.com")).toMatch(/too wide/);
    expect(listedNameProblem("*")).toMatch(/one whole label|not a host name|too wide/);
    expect(listedNameProblem("a.*.example.com")).toMatch(/one whole label/);
    expect(listedNameProblem("10.0.0.1")).toMatch(/IP address/);
  });
});
