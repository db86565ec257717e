/**
 * What RabbitMQ, Kafka, NATS and (at its debug level only) Mosquitto write to their logs when they refuse a user, read back as the run's
 * broker denials with the policy line that would allow each (or why none can). One parser per
 * broker, each taking the lines of one identity (broker-log.ts finds them) and returning entries
 * counted by what was refused; a line the parser does not know is skipped, never guessed at.
 */
import { denialKey, type BusDenial } from "./kind.js";

/** Counts entries by what was refused; keeps the first time. */
class Tally {
  private readonly byKey = new Map<string, BusDenial>();

  add(d: Omit<BusDenial, "count">): void {
    const key = denialKey(d);
    const prev = this.byKey.get(key);
    if (prev) prev.count++;
    else this.byKey.set(key, { ...d, count: 1 });
  }

  list(): BusDenial[] {
    return [...this.byKey.values()];
  }
}

/** A log's local date and time ("2026-12-04 03:52:31.367495", "/" or "-" between the parts) as ISO. */
function isoTime(date: string, time: string, offset = ""): string | undefined {
  const ms = time.replace(",", ".").replace(/(\.\d{3})\d*/, "$1");
  const d = new Date(`${date.replace(/\//g, "-")}T${ms}${offset}`);
  return Number.isNaN(d.getTime()) ? undefined : d.toISOString();
}

// 2026-12-04 03:52:31.367495+00:00 [error] <0.876.0> operation basic.publish caused a channel exception
// access_refused: write access to exchange 'x' in vhost '/' refused for user 'airlock-...'
const RABBIT =
  /^(\d{4}-\d\d-\d\d) (\d\d:\d\d:\d\d[.,]\d+)(\+\d\d:\d\d|Z)? \[\w+\] \S+ operation (\S+) caused a (?:channel|connection) exception access_refused: "?(?:(configure|write|read) )?access to (queue|exchange|topic) '([^']*)' in vhost '([^']*)' refused for user '([^']*)'/;

/** RabbitMQ's access_refused lines of `user`. */
export function deniedFromRabbitmqLog(lines: string[], user: string): BusDenial[] {
  const tally = new Tally();
  for (const line of lines) {
    const m = RABBIT.exec(line);
    if (!m || m[9] !== user) continue;
    const [, date, clock, offset, operation, access, what, name] = m as unknown as string[];
    const action = /^basic\.(publish)/.test(operation!)
      ? "publish"
      : /^basic\.(consume|get)/.test(operation!)
        ? "consume"
        : /declare$/.test(operation!)
          ? "declare"
          : /bind$/.test(operation!)
            ? "bind"
            : (operation ?? "operation");
    const time = isoTime(date!, clock!, offset ?? "");
    let fix: string;
    let never = false;
    if (what === "exchange" && (name === "amq.default" || name === "")) {
      never = true;
      fix =
        "none: the default exchange is never granted; publish to a queue in bus.rabbitmq.queues.publish through the run's exchange (AIRLOCK_AMQP_EXCHANGE)";
    } else if (what === "exchange" && name!.startsWith("amq.")) {
      never = true;
      fix = `none: RabbitMQ's own exchanges (${name}) are never granted to agents`;
    } else if (what === "exchange") fix = `add ${name} to bus.rabbitmq.exchanges.publish`;
    else if (access === "write" && action === "publish")
      fix = `add ${name} to bus.rabbitmq.queues.publish (the runner binds it to the run's exchange)`;
    else if (action === "declare")
      // A declare says nothing of what the agent means to do with the queue: name both, so that a
      // publisher is not told to take read rights.
      fix = `add ${name} to bus.rabbitmq.queues.publish if the agent publishes to it, or bus.rabbitmq.queues.consume if it consumes from it (the runner declares it either way)`;
    else fix = `add ${name} to bus.rabbitmq.queues.consume`;
    const allow = never
      ? undefined
      : what === "exchange"
        ? { path: ["bus", "rabbitmq", "exchanges", "publish"], value: name! }
        : ["consume", "declare"].includes(action)
          ? { path: ["bus", "rabbitmq", "queues", "consume"], value: name! }
          : undefined;
    tally.add({
      broker: "rabbitmq",
      what: what!,
      name: name!,
      action,
      command: operation!,
      fix,
      ...(never ? { never } : {}),
      ...(time ? { time } : {}),
      ...(allow ? { allow } : {}),
    });
  }
  return tally.list();
}

// [5894] 2026/12/04 03:52:41.009816 [ERR] 172.18.0.2:54024 - cid:10 - Publish Violation - User "u", Subject "s"
const NATS =
  /^\[\d+\] (\d{4}\/\d\d\/\d\d) (\d\d:\d\d:\d\d\.\d+) \[\w+\] .* - (Publish|Subscription) Violation - User "([^"]*)", Subject "([^"]*)"(?:, Queue "([^"]*)")?/;

/** NATS's publish and subscription violations of `user`. */
export function deniedFromNatsLog(lines: string[], user: string): BusDenial[] {
  const tally = new Tally();
  for (const line of lines) {
    const m = NATS.exec(line);
    if (!m || m[4] !== user) continue;
    const [, date, time, kind, , subject] = m as unknown as string[];
    const action = kind === "Publish" ? "publish" : "subscribe";
    const list = action === "publish" ? "bus.nats.publish" : "bus.nats.subscribe";
    const inbox = /^_INBOX[._]/.test(subject!);
    // Publishing to an inbox is answering a request: `reply: true` allows one answer to each request received.
    const answer = inbox && action === "publish";
    const internal = /^\$(SYS|JS|KV|O)\b/.test(subject!) || (inbox && !answer);
    const t = isoTime(date!, time!);
    tally.add({
      broker: "nats",
      what: "subject",
      name: subject!,
      action,
      fix: answer
        ? "set bus.nats.reply: true (it answers requests it received)"
        : internal
          ? `none: ${inbox ? "other clients' inboxes are never granted; the run's own is (AIRLOCK_NATS_INBOX_PREFIX)" : "the server's own subjects are never granted to agents"}`
          : `add ${subject} to ${list}`,
      ...(internal ? { never: true } : {}),
      ...(t ? { time: t } : {}),
      ...(answer
        ? { allow: { path: ["bus", "nats", "reply"], value: true as const } }
        : internal
          ? {}
          : { allow: { path: ["bus", "nats", action], value: subject! } }),
    });
  }
  return tally.list();
}

// [2026-12-04 03:52:34,716] INFO Principal = User:u is Denied operation = DESCRIBE from host = 172.18.0.2 on
// resource = Topic:LITERAL:t for request = Metadata with resourceRefCount = 1 based on rule DefaultDeny (kafka.authorizer.logger)
const KAFKA =
  /^\[(\d{4}-\d\d-\d\d) (\d\d:\d\d:\d\d,\d+)\] \w+ Principal = User:(\S+) is Denied [Oo]peration = (\w+) from host = \S+ on resource = (\w+):(?:LITERAL:|PREFIXED:)?(.*?) for request = (\w+)/;

/** Kafka's authorizer denials of `user` (its kafka.authorizer.logger lines). */
export function deniedFromKafkaLog(lines: string[], user: string): BusDenial[] {
  const tally = new Tally();
  for (const line of lines) {
    const m = KAFKA.exec(line);
    if (!m || m[3] !== user) continue;
    const [, date, time, , operation, resource, name, request] = m as unknown as string[];
    const op = operation!.toUpperCase();
    const what = resource === "Topic" ? "topic" : resource === "Group" ? "group" : resource!.toLowerCase();
    const action =
      what === "topic"
        ? op === "WRITE"
          ? "produce"
          : op === "READ"
            ? "consume"
            : op.toLowerCase()
        : what === "group"
          ? "consume"
          : op.toLowerCase();
    let fix: string;
    let never = false;
    if (what === "topic" && op === "CREATE")
      fix = `list ${name} in bus.kafka.topics.produce or consume and set bus.kafka.topics.create: true`;
    else if (what === "topic" && (op === "WRITE" || op === "IDEMPOTENT_WRITE"))
      fix = `add ${name} to bus.kafka.topics.produce`;
    else if (what === "topic" && (op === "READ" || op === "DESCRIBE"))
      fix = `add ${name} to bus.kafka.topics.consume (or produce, which may describe it too)`;
    else if (what === "group") fix = `add ${name} to bus.kafka.groups`;
    else {
      never = true;
      fix = `none: ${op.toLowerCase()} on the ${what} is never granted to agents`;
    }
    const t = isoTime(date!, time!);
    const allow =
      what === "group"
        ? { path: ["bus", "kafka", "groups"], value: name! }
        : what === "topic" && action === "produce"
          ? { path: ["bus", "kafka", "topics", "produce"], value: name! }
          : what === "topic" && (action === "consume" || action === "describe" || action === "create")
            ? // A create (or describe) does not say whether the agent produces or consumes: learn
              // takes it as consume until the topic is learnt for produce (learn.ts, describeOnly).
              { path: ["bus", "kafka", "topics", "consume"], value: name! }
            : undefined;
    tally.add({
      broker: "kafka",
      what,
      name: name!,
      action,
      command: request!,
      fix,
      ...(never ? { never } : {}),
      ...(t ? { time: t } : {}),
      ...(allow ? { allow } : {}),
    });
  }
  return tally.list();
}

// 1764820000: Denied PUBLISH from airlock-... (d0, q1, r0, m1, 'other/x', ... (5 bytes))
const MOSQUITTO = /^(\d+): Denied PUBLISH from (\S+) \(d\d, q\d, r\d, m\d+, '(.*)', \.\.\. \(\d+ bytes\)\)/;

/**
 * Mosquitto's refused publishes of client `clientId` (each identity has a client id of its own).
 * Mosquitto writes them only at its debug level (`log_type debug`, which logs every message too),
 * and a refused subscription nowhere: airlock's local broker does not run at that level, so this
 * reads only a log a user points AIRLOCK_MQTT_LOG at.
 */
export function deniedFromMosquittoLog(lines: string[], clientId: string): BusDenial[] {
  const tally = new Tally();
  for (const line of lines) {
    const m = MOSQUITTO.exec(line);
    if (!m || m[2] !== clientId) continue;
    const topic = m[3]!;
    const system = topic.startsWith("$");
    tally.add({
      broker: "mqtt",
      what: "topic",
      name: topic,
      action: "publish",
      fix: system
        ? "none: the broker's own topics ($SYS, $CONTROL) are never granted to agents"
        : `add ${topic} to bus.mqtt.publish`,
      ...(system ? { never: true } : { allow: { path: ["bus", "mqtt", "publish"], value: topic } }),
      time: new Date(Number(m[1]) * 1000).toISOString(),
    });
  }
  return tally.list();
}
