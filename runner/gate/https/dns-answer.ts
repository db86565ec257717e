/**
 * Answering the agent's DNS questions for HTTPS services by name, without asking anyone: a name the
 * policy lists (one wildcard label included, which /etc/hosts cannot express) gets the address the
 * gate routes to the egress proxy; any other name gets NXDOMAIN at once, and is reported. Nothing is
 * forwarded to a real resolver, so a query cannot carry data out (the classic DNS exfiltration).
 *
 * Pure: one UDP payload in, one out (or none for what is not a question). Bounded: a question over
 * 512 bytes, with more than one entry, or with a malformed name is not answered.
 */
import { hostNameProblem } from "../../policy/https-service.js";
import { nameMatches } from "./names.js";

const TYPE_A = 1;
const CLASS_IN = 1;
const RCODE_NOERROR = 0;
const RCODE_FORMERR = 1;
const RCODE_NXDOMAIN = 3;
const MAX_QUERY = 512;
/** How long a client may keep an answer: short, as the run is. */
const TTL_SECONDS = 60;

export interface DnsQuestion {
  name: string;
  type: number;
}

export interface DnsOutcome {
  /** The reply to send, or undefined: not a question (dropped). */
  reply?: Buffer;
  question?: DnsQuestion;
  /** Set when the name asked for is not listed. */
  refused?: string;
}

/**
 * The reply to `query`: A → `address` for a listed name, AAAA → no data (IPv4 only, so clients fall
 * back at once), anything else for a listed name → no data; an unlisted name → NXDOMAIN.
 */
export function answerDnsQuery(query: Buffer, listed: { host: string }[], address: string): DnsOutcome {
  if (query.length < 12 || query.length > MAX_QUERY) return {};
  const flags = query.readUInt16BE(2);
  // QR set (a response) or an opcode other than QUERY: not a question.
  if (flags & 0x8000 || (flags >> 11) & 0xf) return {};
  const id = query.readUInt16BE(0);
  const qdcount = query.readUInt16BE(4);
  if (qdcount !== 1) return { reply: header(id, flags, RCODE_FORMERR, 0, 0) };
  const parsed = readName(query, 12);
  if (!parsed || parsed.end + 4 > query.length) return { reply: header(id, flags, RCODE_FORMERR, 0, 0) };
  const name = parsed.name.toLowerCase();
  const type = query.readUInt16BE(parsed.end);
  const klass = query.readUInt16BE(parsed.end + 2);
  const questionBytes = query.subarray(12, parsed.end + 4);
  const question = { name, type };
  const isListed =
    klass === CLASS_IN && hostNameProblem(name) === undefined && listed.some((s) => nameMatches(name, s.host));
  if (!isListed)
    return {
      reply: Buffer.concat([header(id, flags, RCODE_NXDOMAIN, 1, 0), questionBytes]),
      question,
      refused: `${name} is not a listed HTTPS service`,
    };
  if (type !== TYPE_A)
    return { reply: Buffer.concat([header(id, flags, RCODE_NOERROR, 1, 0), questionBytes]), question };
  const answer = Buffer.alloc(16);
  answer.writeUInt16BE(0xc00c, 0); // the name: a pointer to the question's
  answer.writeUInt16BE(TYPE_A, 2);
  answer.writeUInt16BE(CLASS_IN, 4);
  answer.writeUInt32BE(TTL_SECONDS, 6);
  answer.writeUInt16BE(4, 10);
  address.split(".").forEach((octet, i) => {
    answer[12 + i] = Number(octet);
  });
  return { reply: Buffer.concat([header(id, flags, RCODE_NOERROR, 1, 1), questionBytes, answer]), question };
}

/** A response header: the query's id and RD bit, RA set, authoritative, with `rcode`. */
function header(id: number, queryFlags: number, rcode: number, qd: number, an: number): Buffer {
  const out = Buffer.alloc(12);
  out.writeUInt16BE(id, 0);
  // QR, AA, the client's RD, RA.
  out.writeUInt16BE(0x8000 | 0x0400 | (queryFlags & 0x0100) | 0x0080 | rcode, 2);
  out.writeUInt16BE(qd, 4);
  out.writeUInt16BE(an, 6);
  return out;
}

/** A question's name (no compression pointers: a question has nothing to point back to). */
function readName(buf: Buffer, start: number): { name: string; end: number } | undefined {
  const labels: string[] = [];
  let at = start;
  let total = 0;
  while (true) {
    if (at >= buf.length) return undefined;
    const length = buf[at]!;
    if (length === 0) return { name: labels.join("."), end: at + 1 };
    if (length > 63 || at + 1 + length > buf.length) return undefined;
    total += length + 1;
    if (total > 253) return undefined;
    labels.push(buf.subarray(at + 1, at + 1 + length).toString("latin1"));
    at += 1 + length;
  }
}
