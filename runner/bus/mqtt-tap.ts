/**
 * MQTT refusals, read off the agent's own connections. Mosquitto writes a refused publish only at
 * its debug level and a refused subscription nowhere, so the gate reads them where MQTT itself says
 * them, on the connections it forwards to the broker (mqtt-wire.ts):
 *
 * - a subscription the broker refused is a failure code in its SUBACK (3.1.1 and 5): the broker's
 *   own answer, matched to the SUBSCRIBE it answers;
 * - a publish the broker refuses is answered with nothing (QoS 0, or any QoS in 3.1.1), so each
 *   PUBLISH's topic is checked against the very rules airlock gave the identity's role (its
 *   publishClientSend ACLs, and the broker's default for the rest, read when the identity was made),
 *   the way the dynamic-security plugin checks it.
 *
 * Only a connection that logged in as the run's own identity is read, and only once the broker
 * accepted the login (what an agent sends before, or with a wrong password, was never judged; what
 * another login was refused is not this identity's, nor fixed by its policy).
 * Entries are bounded (denial-tally.ts); per connection, at most MAX_PENDING unanswered SUBSCRIBEs
 * and MAX_ALIASES topic aliases are held.
 */
import { DenialTally } from "./denial-tally.js";
import type { BusDenial, TapConnection, TapRun, WireTap } from "./kind.js";
import {
  MAX_PACKET_HEAD,
  MqttFramer,
  MqttWireError,
  PACKET,
  readConnack,
  readConnect,
  readPublish,
  readSuback,
  readSubscribe,
  topicMatches,
} from "./mqtt-wire.js";

const MAX_PENDING = 64;
const MAX_ALIASES = 1024;
/** Publishes sent before the broker answered the login, held until it does. */
const MAX_EARLY = 256;

export class MqttTap implements WireTap {
  private readonly tally = new DenialTally();
  private publishByDefault = false;

  /**
   * `publish`: the topic filters the identity may publish to (its role's publishClientSend ACLs).
   * `run`: whose identity (its name starts with airlock-<runId>-).
   */
  constructor(
    private readonly publish: string[],
    private readonly run: Pick<TapRun, "runId">,
    private readonly now: () => Date = () => new Date(),
  ) {}

  /** The broker's default for a publish no ACL names (dynamic security's publishClientSend; denied unless it says). */
  defaultPublish(allowed: boolean): void {
    this.publishByDefault = allowed;
  }

  denied(): BusDenial[] {
    return this.tally.list();
  }

  connection(): TapConnection {
    let level = 4;
    let ours = false;
    let accepted = false;
    const early: string[] = [];
    const aliases = new Map<number, string>();
    const pending = new Map<number, string[]>();
    const published = (topic: string) => {
      if (!accepted) {
        if (early.length < MAX_EARLY) early.push(topic);
        return;
      }
      if (!this.allowed(topic)) this.refused("publish", topic);
    };
    let connected = false;
    const agent = new MqttFramer(
      (type, _flags, length) => {
        // A client's first packet is its CONNECT (MQTT §3.1); anything else is not an MQTT client.
        if (!connected && type !== PACKET.connect)
          throw new MqttWireError("not MQTT: the first packet is not a CONNECT");
        connected = true;
        return type === PACKET.connect || type === PACKET.subscribe
          ? length
          : type === PACKET.publish
            ? Math.min(length, MAX_PACKET_HEAD)
            : 0;
      },
      (type, flags, head) => {
        if (type === PACKET.connect) {
          const connect = readConnect(head);
          level = connect.level;
          ours = connect.username?.startsWith(`airlock-${this.run.runId}-`) ?? false;
        } else if (type === PACKET.subscribe) {
          const sub = readSubscribe(head, level);
          if (pending.size >= MAX_PENDING) pending.delete(pending.keys().next().value!);
          pending.set(sub.id, sub.filters);
        } else if (type === PACKET.publish && ours) {
          const p = readPublish(head, flags, level);
          let topic = p.topic;
          if (p.alias !== undefined) {
            if (topic) {
              if (aliases.size < MAX_ALIASES || aliases.has(p.alias)) aliases.set(p.alias, topic);
            } else topic = aliases.get(p.alias) ?? "";
          }
          // A topic with wildcards (or none) is a protocol error the broker disconnects for, not a refusal.
          if (topic && !/[+#]/.test(topic)) published(topic);
        }
      },
    );
    const broker = new MqttFramer(
      (type, _flags, length) => (type === PACKET.connack ? Math.min(length, 2) : type === PACKET.suback ? length : 0),
      (type, _flags, head) => {
        if (type === PACKET.connack) {
          accepted = readConnack(head) === 0 && ours;
          if (accepted) for (const topic of early.splice(0)) published(topic);
          else early.length = 0;
        } else if (type === PACKET.suback && accepted) {
          const { id, codes } = readSuback(head, level);
          const filters = pending.get(id);
          pending.delete(id);
          codes.forEach((code, i) => {
            const filter = filters?.[i];
            if (code >= 0x80 && filter !== undefined) this.refused("subscribe", filter);
          });
        }
      },
    );
    return { fromAgent: (c) => agent.push(c), fromBroker: (c) => broker.push(c) };
  }

  private allowed(topic: string): boolean {
    // The broker's own topics are never an agent's ($SYS is refused before any ACL is read).
    if (topic.startsWith("$")) return false;
    return this.publish.some((f) => topicMatches(f, topic)) || this.publishByDefault;
  }

  private refused(action: "publish" | "subscribe", topic: string): void {
    this.tally.add(mqttDenial(action, topic, this.now().toISOString()));
  }
}

/** A refused publish or subscription, with the policy line that allows it (in the policy's words: `*`, not `+`/`#`). */
export function mqttDenial(action: "publish" | "subscribe", topic: string, time?: string): BusDenial {
  const system = topic.startsWith("$");
  const pattern = topic
    .split("/")
    .map((t) => (t === "+" || t === "#" ? "*" : t))
    .join("/");
  return {
    broker: "mqtt",
    what: "topic",
    name: topic,
    action,
    count: 1,
    fix: system
      ? "none: the broker's own topics ($SYS, $CONTROL, $share) are never granted to agents"
      : `add ${pattern} to bus.mqtt.${action}`,
    ...(system ? { never: true } : { allow: { path: ["bus", "mqtt", action], value: pattern } }),
    ...(time ? { time } : {}),
  };
}
