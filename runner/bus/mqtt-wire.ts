/**
 * Reads MQTT (3.1, 3.1.1 and 5) packets off a byte stream as it passes, for the refusal tap
 * (mqtt-tap.ts): Mosquitto keeps no record of what it refuses, but the packets say it — a SUBACK's
 * failure codes, and a PUBLISH's topic. Only the start of the packets that matter is read (CONNECT,
 * CONNACK, PUBLISH up to its properties, SUBSCRIBE, SUBACK); everything else, payloads included, is
 * skipped without being copied. What is held is bounded: a packet whose start exceeds the limits, or
 * bytes that are not MQTT, throw MqttWireError, and the gate closes the connection (a connection the
 * gate cannot read is not one it lets through).
 */

import { ByteCursor } from "../util/byte-cursor.js";

/** The most of one packet's start that is read (CONNECT, SUBSCRIBE, SUBACK whole; PUBLISH to its payload). */
export const MAX_PACKET_HEAD = 128 * 1024;

export const PACKET = { connect: 1, connack: 2, publish: 3, subscribe: 8, suback: 9 } as const;

export class MqttWireError extends Error {}

/** Splits a stream into packets: `head(type, flags, length)` says how much of each to read; `packet` gets it. */
export class MqttFramer {
  private pending: Buffer = Buffer.alloc(0);
  private skip = 0;

  constructor(
    private readonly head: (type: number, flags: number, length: number) => number,
    private readonly packet: (type: number, flags: number, head: Buffer, length: number) => void,
  ) {}

  push(chunk: Buffer): void {
    const data = this.pending.length ? Buffer.concat([this.pending, chunk]) : chunk;
    this.pending = Buffer.alloc(0);
    let pos = 0;
    for (;;) {
      if (this.skip > 0) {
        const n = Math.min(this.skip, data.length - pos);
        pos += n;
        this.skip -= n;
        if (this.skip > 0) return;
      }
      if (pos >= data.length) return;
      const header = fixedHeader(data, pos);
      if (!header) {
        this.keep(data, pos);
        return;
      }
      const type = data[pos]! >> 4;
      const flags = data[pos]! & 0x0f;
      const want = this.head(type, flags, header.length);
      if (want > MAX_PACKET_HEAD) throw new MqttWireError(`an MQTT packet (type ${type}) too large to read`);
      const start = pos + header.size;
      if (data.length - start < want) {
        this.keep(data, pos);
        return;
      }
      this.packet(type, flags, data.subarray(start, start + want), header.length);
      pos = start + want;
      this.skip = header.length - want;
    }
  }

  /** What is left of a packet's start, copied (the chunk it came in is not held). */
  private keep(data: Buffer, pos: number): void {
    if (data.length - pos > MAX_PACKET_HEAD + 5) throw new MqttWireError("an MQTT packet's start too large to read");
    this.pending = Buffer.from(data.subarray(pos));
  }
}

/** Fixed header: its size (type byte and remaining length) and the remaining length; undefined until whole. */
function fixedHeader(data: Buffer, pos: number): { size: number; length: number } | undefined {
  let length = 0;
  for (let i = 0; i < 4; i++) {
    const at = pos + 1 + i;
    if (at >= data.length) return undefined;
    const b = data[at]!;
    length += (b & 0x7f) * 128 ** i;
    if (!(b & 0x80)) return { size: 2 + i, length };
  }
  throw new MqttWireError("not MQTT: a remaining length longer than four bytes");
}

/** A cursor over one packet's start; a length that does not fit throws MqttWireError. */
const cursor = (b: Buffer) =>
  new ByteCursor(b, (message) => new MqttWireError(`an MQTT packet shorter than it says (${message})`));

/** A UTF-8 string as MQTT writes it (a two-byte length first). */
const string = (c: ByteCursor, what: string) => c.vector16(what).toString("utf8");

/** A variable byte integer (MQTT §1.5.5). */
function varint(c: ByteCursor, what: string): number {
  let v = 0;
  for (let i = 0; i < 4; i++) {
    const b = c.u8(what);
    v += (b & 0x7f) * 128 ** i;
    if (!(b & 0x80)) return v;
  }
  throw new MqttWireError("not MQTT: a variable byte integer longer than four bytes");
}

/** MQTT 5 properties: skipped, or read as a cursor of their own. */
const properties = (c: ByteCursor) => cursor(c.take(varint(c, "properties length"), "properties"));

export interface Connect {
  level: number;
  username?: string;
}

export function readConnect(head: Buffer): Connect {
  const c = cursor(head);
  const name = string(c, "protocol name");
  if (name !== "MQTT" && name !== "MQIsdp") throw new MqttWireError(`not MQTT: a CONNECT for protocol "${name}"`);
  const level = c.u8("protocol level");
  const flags = c.u8("connect flags");
  c.u16("keep alive");
  if (level === 5) properties(c);
  c.vector16("client id");
  if (flags & 0x04) {
    if (level === 5) properties(c);
    c.vector16("will topic");
    c.vector16("will payload");
  }
  return { level, ...(flags & 0x80 ? { username: string(c, "user name") } : {}) };
}

/** CONNACK: 0 is accepted (its return code in 3.1.1, its reason code in 5). */
export function readConnack(head: Buffer): number {
  const c = cursor(head);
  c.u8("acknowledge flags");
  return c.u8("reason code");
}

export interface Publish {
  topic: string;
  /** MQTT 5: the topic alias this PUBLISH sets or uses. */
  alias?: number;
}

export function readPublish(head: Buffer, flags: number, level: number): Publish {
  const c = cursor(head);
  const topic = string(c, "topic");
  if ((flags >> 1) & 3) c.u16("packet id");
  if (level !== 5) return { topic };
  const props = properties(c);
  while (props.left > 0) {
    const id = props.u8("property");
    if (id === 0x23) return { topic, alias: props.u16("topic alias") };
    skipProperty(props, id);
  }
  return { topic };
}

export function readSubscribe(head: Buffer, level: number): { id: number; filters: string[] } {
  const c = cursor(head);
  const id = c.u16("packet id");
  if (level === 5) properties(c);
  const filters: string[] = [];
  while (c.left > 0) {
    filters.push(string(c, "topic filter"));
    c.u8("subscription options");
  }
  return { id, filters };
}

export function readSuback(head: Buffer, level: number): { id: number; codes: number[] } {
  const c = cursor(head);
  const id = c.u16("packet id");
  if (level === 5) properties(c);
  return { id, codes: [...c.take(c.left, "reason codes")] };
}

/** MQTT 5 properties by how their values are written (§2.2.2.2). */
const BYTE_PROPS = new Set([0x01, 0x17, 0x19, 0x24, 0x25, 0x28, 0x29, 0x2a]);
const U16_PROPS = new Set([0x13, 0x21, 0x22, 0x23]);
const U32_PROPS = new Set([0x02, 0x11, 0x18, 0x27]);
const STRING_PROPS = new Set([0x03, 0x08, 0x09, 0x12, 0x15, 0x16, 0x1a, 0x1c, 0x1f]);

function skipProperty(c: ByteCursor, id: number): void {
  const what = `property ${id}`;
  if (BYTE_PROPS.has(id)) c.u8(what);
  else if (U16_PROPS.has(id)) c.u16(what);
  else if (U32_PROPS.has(id)) c.take(4, what);
  else if (STRING_PROPS.has(id)) c.vector16(what);
  else if (id === 0x0b) varint(c, what);
  else if (id === 0x26) {
    c.vector16(what);
    c.vector16(what);
  } else throw new MqttWireError(`not MQTT 5: unknown property ${id}`);
}

/** Whether `topic` matches the topic filter `filter` (+ one level, # the rest; `$` topics only by name). */
export function topicMatches(filter: string, topic: string): boolean {
  const f = filter.split("/");
  const t = topic.split("/");
  if (topic.startsWith("$") && (f[0] === "+" || f[0] === "#")) return false;
  for (let i = 0; i < f.length; i++) {
    if (f[i] === "#") return true;
    if (i >= t.length) return false;
    if (f[i] !== "+" && f[i] !== t[i]) return false;
  }
  return f.length === t.length;
}
