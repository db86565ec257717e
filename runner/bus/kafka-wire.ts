/**
 * Kafka's wire protocol, as much of it as airlock's admin requests need (kafka-scram.ts): the
 * primitive types of a request and a response (big-endian integers, strings, compact and tagged
 * fields), and one connection that frames requests and matches replies by correlation id.
 */
import { connect, type Socket } from "node:net";

export class Writer {
  private readonly parts: Buffer[] = [];
  int8(v: number) {
    const b = Buffer.alloc(1);
    b.writeInt8(v);
    this.parts.push(b);
    return this;
  }
  int16(v: number) {
    const b = Buffer.alloc(2);
    b.writeInt16BE(v);
    this.parts.push(b);
    return this;
  }
  int32(v: number) {
    const b = Buffer.alloc(4);
    b.writeInt32BE(v);
    this.parts.push(b);
    return this;
  }
  uvarint(v: number) {
    const out: number[] = [];
    while (v > 0x7f) {
      out.push((v & 0x7f) | 0x80);
      v >>>= 7;
    }
    out.push(v);
    this.parts.push(Buffer.from(out));
    return this;
  }
  /** Classic string: int16 length. */
  string(s: string) {
    const b = Buffer.from(s);
    return this.int16(b.length).raw(b);
  }
  /** Classic bytes: int32 length. */
  bytes(b: Buffer) {
    return this.int32(b.length).raw(b);
  }
  /** Compact (flexible versions): unsigned varint length + 1. */
  compactString(s: string) {
    const b = Buffer.from(s);
    return this.uvarint(b.length + 1).raw(b);
  }
  compactBytes(b: Buffer) {
    return this.uvarint(b.length + 1).raw(b);
  }
  raw(b: Buffer) {
    this.parts.push(b);
    return this;
  }
  buffer() {
    return Buffer.concat(this.parts);
  }
}

export class Reader {
  constructor(
    private readonly b: Buffer,
    private at = 0,
  ) {}
  int8() {
    return this.b.readInt8(this.at++);
  }
  int16() {
    const v = this.b.readInt16BE(this.at);
    this.at += 2;
    return v;
  }
  int32() {
    const v = this.b.readInt32BE(this.at);
    this.at += 4;
    return v;
  }
  int64() {
    this.at += 8;
  }
  uvarint() {
    let v = 0;
    let shift = 0;
    for (;;) {
      const byte = this.b[this.at++]!;
      v |= (byte & 0x7f) << shift;
      if (!(byte & 0x80)) return v >>> 0;
      shift += 7;
    }
  }
  nullableString(): string | null {
    const n = this.int16();
    if (n < 0) return null;
    const s = this.b.toString("utf8", this.at, this.at + n);
    this.at += n;
    return s;
  }
  bytes(): Buffer {
    const n = this.int32();
    const s = this.b.subarray(this.at, this.at + Math.max(n, 0));
    this.at += Math.max(n, 0);
    return s;
  }
  compactNullableString(): string | null {
    const n = this.uvarint() - 1;
    if (n < 0) return null;
    const s = this.b.toString("utf8", this.at, this.at + n);
    this.at += n;
    return s;
  }
  skipTags() {
    const n = this.uvarint();
    for (let i = 0; i < n; i++) {
      this.uvarint();
      this.at += this.uvarint();
    }
  }
}

/** One connection to a broker that sends requests and matches responses by correlation id. */
export class Connection {
  private buffered = Buffer.alloc(0);
  private readonly waiting = new Map<number, (body: Buffer) => void>();
  private nextId = 1;
  private failure: Error | undefined;

  private constructor(private readonly socket: Socket) {
    socket.on("data", (chunk: Buffer) => {
      this.buffered = Buffer.concat([this.buffered, chunk]);
      while (this.buffered.length >= 4) {
        const size = this.buffered.readInt32BE(0);
        if (this.buffered.length < 4 + size) break;
        const frame = this.buffered.subarray(4, 4 + size);
        this.buffered = this.buffered.subarray(4 + size);
        const id = frame.readInt32BE(0);
        this.waiting.get(id)?.(frame.subarray(4));
        this.waiting.delete(id);
      }
    });
    const fail = (err: Error) => {
      this.failure = err;
      for (const w of this.waiting.values()) w(Buffer.alloc(0));
      this.waiting.clear();
    };
    socket.on("error", fail);
    socket.on("close", () => fail(new Error("the broker closed the connection")));
  }

  static open(host: string, port: number, timeoutMs = 5000): Promise<Connection> {
    return new Promise((resolve, reject) => {
      const socket = connect({ host, port });
      socket.setTimeout(timeoutMs, () =>
        socket.destroy(new Error(`no answer from ${host}:${port} within ${timeoutMs} ms`)),
      );
      socket.once("connect", () => {
        socket.setTimeout(0);
        resolve(new Connection(socket));
      });
      socket.once("error", reject);
    });
  }

  /** Send a request; `flexible` uses request header v2 (with tagged fields) and response header v1. */
  async request(apiKey: number, apiVersion: number, body: Buffer, flexible = false): Promise<Reader> {
    if (this.failure) throw this.failure;
    const id = this.nextId++;
    const header = new Writer().int16(apiKey).int16(apiVersion).int32(id).string("airlock-runner");
    if (flexible) header.uvarint(0);
    const payload = Buffer.concat([header.buffer(), body]);
    const reply = new Promise<Buffer>((resolve) => this.waiting.set(id, resolve));
    this.socket.write(Buffer.concat([new Writer().int32(payload.length).buffer(), payload]));
    const frame = await reply;
    if (this.failure) throw this.failure;
    const reader = new Reader(frame);
    if (flexible) reader.skipTags();
    return reader;
  }

  close(): void {
    this.socket.destroy();
  }
}
