/**
 * ctx.denials(): what the gate, the egress proxy and the brokers refused this agent so far, as the
 * runner reports it — so agent code (and a model driving it) can say what it needs instead of
 * retrying blindly. The runner keeps the list in a read-only file (/run/airlock/refusals.jsonl);
 * this asks it for a fresh one over the control channel and waits (briefly) for the answer. An
 * agent can read the list but not change it: only the runner writes there.
 */
import { randomBytes } from "node:crypto";
import { readFile, stat } from "node:fs/promises";
import { encodeControl, REFUSALS_ANSWERED, REFUSALS_DIR, REFUSALS_FILE } from "./protocol.js";

/**
 * One refusal, as the run's result lists it (the runner builds these: runner/run/refusals.ts). The
 * shape is the contract between the runner and both runtimes, so it is defined once, here.
 */
export interface Refusal {
  /** When it was first refused, where the layer says; else when the runner read it (ISO 8601). */
  time: string;
  /** network: the gate's L4 tables; https: the egress proxy for HTTPS by name; broker: a broker's own refusal. */
  layer: "network" | "https" | "broker";
  /** tcp, udp, other (network); https, dns (https); redis, rabbitmq, kafka, nats, mqtt (broker). */
  kind: string;
  /** What the agent tried: connect, resolve, publish, subscribe, consume, produce, declare, a command... */
  action: string;
  /** What it tried it on: host:port, a name, a key, channel, queue, exchange, topic, group or subject. */
  resource: string;
  /** endpoint, name, key, channel, queue, exchange, topic, group, subject, command, ... */
  resourceType: string;
  count: number;
  /** The count reached the layer's counter cap: at least this many. */
  countAtLeast?: true;
  /** A stable id of the rule that refused it (e.g. network.tcp, https.not-listed, rabbitmq.exchange.publish). */
  rule: string;
  /** The policy line that would allow it, or (with `never`) why none can. */
  fix: string;
  never?: true;
  /** The fix as data (broker refusals): the policy list to add `value` to; what `airlock learn` applies. */
  allow?: { path: string[]; value: string | true };
}

/** How long to wait for the runner's answer before reading what the file holds. */
const WAIT_MS = 3000;
/** The file is the runner's; a bigger one is not read. */
const MAX_BYTES = 4 * 1024 * 1024;

const read = (path: string) =>
  readFile(path, "utf8").then(
    (text) => text,
    () => undefined,
  );

export async function denials(options: { waitMs?: number } = {}): Promise<Refusal[]> {
  // No /run/airlock: the runner keeps no live list for this agent.
  if (
    !(await stat(REFUSALS_DIR).then(
      (s) => s.isDirectory(),
      () => false,
    ))
  )
    return [];
  const id = randomBytes(8).toString("hex");
  process.stdout.write(`${encodeControl({ type: "refusals", id })}\n`);
  const until = Date.now() + (options.waitMs ?? WAIT_MS);
  // The runner answers within a refresh (a few ms to a broker's round trip): poll its answer.
  while (Date.now() < until) {
    if ((await read(REFUSALS_ANSWERED))?.split("\n").includes(id)) break;
    await new Promise((r) => setTimeout(r, 25));
  }
  const text = (await read(REFUSALS_FILE)) ?? "";
  if (text.length > MAX_BYTES) throw new Error(`${REFUSALS_FILE} is larger than ${MAX_BYTES} bytes`);
  return text
    .split("\n")
    .filter(Boolean)
    .map((line) => JSON.parse(line) as Refusal);
}
