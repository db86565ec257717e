/**
 * Reading the first flight of a TLS connection — the ClientHello — to learn which name the agent
 * asks for (SNI), which application protocols it offers (ALPN) and whether it hides the real name
 * (Encrypted Client Hello), before a single byte goes upstream. The egress proxy decides from this
 * alone whether a connection may leave; it never trusts anything later in the stream for that.
 *
 * Bounded: the hello may span several TLS records (post-quantum key shares make it large), but
 * never more than MAX_HELLO_BYTES; anything else is a refusal with a reason, never a wait.
 */

import { ByteCursor } from "../../util/byte-cursor.js";

/** What the proxy reads at most before it decides (a ClientHello is rarely over 2 KiB). */
export const MAX_HELLO_BYTES = 16 * 1024;

const CONTENT_HANDSHAKE = 0x16;
const HANDSHAKE_CLIENT_HELLO = 0x01;
const EXT_SERVER_NAME = 0x0000;
const EXT_ALPN = 0x0010;
/** encrypted_client_hello (RFC 9849 draft code point in use by browsers and servers). */
const EXT_ECH = 0xfe0d;
const NAME_TYPE_HOST = 0x00;

export interface ClientHello {
  /** The requested name, lower-cased, without a trailing dot; undefined when the hello names none. */
  sni?: string;
  /** Application protocols offered, in the client's order (h2, http/1.1, …). */
  alpn: string[];
  /** The client sent an Encrypted Client Hello: the name it really wants is not `sni`. */
  ech: boolean;
}

export type HelloRead =
  | { state: "complete"; hello: ClientHello /** Bytes of the hello records (to replay upstream). */; length: number }
  | { state: "partial" }
  | { state: "invalid"; reason: "not-tls" | "plain-http" | "too-large" | "malformed"; detail: string };

/** Methods a plain HTTP request starts with: such a connection on a TLS port gets an HTTP answer, not a TLS alert. */
const HTTP_METHODS = ["GET ", "POST ", "PUT ", "HEAD ", "DELETE ", "OPTIONS ", "PATCH ", "CONNECT ", "TRACE "];

/**
 * Read a ClientHello from the bytes received so far. "partial": wait for more (the caller bounds
 * the time); "complete": the hello, and how many bytes its records took.
 */
export function readClientHello(data: Buffer): HelloRead {
  if (data.length === 0) return { state: "partial" };
  if (data[0] !== CONTENT_HANDSHAKE) {
    const start = data.subarray(0, 8).toString("latin1");
    if (HTTP_METHODS.some((m) => m.startsWith(start) || start.startsWith(m)))
      return { state: "invalid", reason: "plain-http", detail: "a plain HTTP request on a TLS port" };
    return {
      state: "invalid",
      reason: "not-tls",
      detail: `first byte 0x${data[0]!.toString(16)} is not a TLS handshake`,
    };
  }
  // Reassemble the handshake message from as many records as it spans.
  const handshake: Buffer[] = [];
  let have = 0;
  let at = 0;
  let need: number | undefined;
  while (true) {
    if (data.length < at + 5) return partialOrTooLarge(data);
    if (data[at] !== CONTENT_HANDSHAKE)
      return { state: "invalid", reason: "malformed", detail: "the hello is interleaved with another record type" };
    const major = data[at + 1]!;
    if (major !== 3) return { state: "invalid", reason: "not-tls", detail: `record version ${major}.x` };
    const recordLength = data.readUInt16BE(at + 3);
    if (recordLength === 0 || recordLength > 16384 + 2048)
      return { state: "invalid", reason: "malformed", detail: `a record of ${recordLength} bytes` };
    if (data.length < at + 5 + recordLength) {
      // The handshake's own length is known as soon as its header arrived: a hello announced
      // larger than the bound is refused then, not after its bytes were waited for.
      if (need === undefined && handshake.length === 0 && recordLength >= 4 && data.length >= at + 9) {
        const announced = 4 + data.readUIntBE(at + 6, 3);
        if (announced > MAX_HELLO_BYTES)
          return { state: "invalid", reason: "too-large", detail: `a ClientHello of ${announced} bytes` };
      }
      return partialOrTooLarge(data);
    }
    handshake.push(data.subarray(at + 5, at + 5 + recordLength));
    have += recordLength;
    at += 5 + recordLength;
    if (need === undefined && have >= 4) {
      const head = Buffer.concat(handshake);
      if (head[0] !== HANDSHAKE_CLIENT_HELLO)
        return { state: "invalid", reason: "not-tls", detail: `handshake type ${head[0]} is not a ClientHello` };
      need = 4 + head.readUIntBE(1, 3);
      if (need > MAX_HELLO_BYTES)
        return { state: "invalid", reason: "too-large", detail: `a ClientHello of ${need} bytes` };
    }
    if (need !== undefined && have >= need) break;
    if (at > MAX_HELLO_BYTES) return { state: "invalid", reason: "too-large", detail: `over ${MAX_HELLO_BYTES} bytes` };
  }
  const body = Buffer.concat(handshake).subarray(4, need);
  try {
    return { state: "complete", hello: parseHelloBody(body), length: at };
  } catch (err) {
    return { state: "invalid", reason: "malformed", detail: (err as Error).message };
  }
}

function partialOrTooLarge(data: Buffer): HelloRead {
  return data.length >= MAX_HELLO_BYTES
    ? { state: "invalid", reason: "too-large", detail: `no complete ClientHello in ${data.length} bytes` }
    : { state: "partial" };
}

function parseHelloBody(body: Buffer): ClientHello {
  const c = new ByteCursor(body);
  c.take(2, "client version");
  c.take(32, "random");
  c.vector8("session id");
  c.vector16("cipher suites");
  c.vector8("compression methods");
  const hello: ClientHello = { alpn: [], ech: false };
  if (c.left === 0) return hello;
  const extensions = new ByteCursor(c.vector16("extensions"));
  const seen = new Set<number>();
  while (extensions.left > 0) {
    const type = extensions.u16("extension type");
    const data = extensions.vector16(`extension ${type}`);
    // A repeated extension is a protocol error; two server_name lists could say two names.
    if (seen.has(type)) throw new Error(`extension ${type} appears twice`);
    seen.add(type);
    if (type === EXT_SERVER_NAME) hello.sni = serverName(data);
    else if (type === EXT_ALPN) hello.alpn = protocols(data);
    else if (type === EXT_ECH) hello.ech = true;
  }
  return hello;
}

function serverName(data: Buffer): string | undefined {
  const list = new ByteCursor(new ByteCursor(data).vector16("server name list"));
  let name: string | undefined;
  while (list.left > 0) {
    const type = list.u8("name type");
    const value = list.vector16("server name");
    if (type !== NAME_TYPE_HOST) continue;
    // RFC 6066: at most one name of each type.
    if (name !== undefined) throw new Error("two host names in server_name");
    name = value.toString("latin1");
  }
  if (name === undefined) return undefined;
  return name.toLowerCase().replace(/\.$/, "");
}

function protocols(data: Buffer): string[] {
  const list = new ByteCursor(new ByteCursor(data).vector16("ALPN list"));
  const out: string[] = [];
  while (list.left > 0) out.push(list.vector8("protocol").toString("latin1"));
  return out;
}
