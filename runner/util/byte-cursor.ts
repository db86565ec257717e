/**
 * Reads a binary message front to back and throws (instead of reading past the end) on a length
 * that does not fit: what the parsers of bytes an agent sent (the TLS ClientHello, MQTT packets)
 * read with, since those lengths are the agent's to choose.
 */
export class ByteCursor {
  constructor(
    private readonly buf: Buffer,
    /** The error a length that does not fit becomes (the parser's own type). */
    private readonly fail: (message: string) => Error = (message) => new Error(message),
    private at = 0,
  ) {}

  get left(): number {
    return this.buf.length - this.at;
  }

  take(n: number, what: string): Buffer {
    if (n > this.left) throw this.fail(`${what}: ${n} bytes announced, ${this.left} left`);
    const out = this.buf.subarray(this.at, this.at + n);
    this.at += n;
    return out;
  }

  u8(what: string): number {
    return this.take(1, what)[0]!;
  }

  u16(what: string): number {
    return this.take(2, what).readUInt16BE(0);
  }

  vector8(what: string): Buffer {
    return this.take(this.u8(what), what);
  }

  vector16(what: string): Buffer {
    return this.take(this.u16(what), what);
  }
}
