/**
 * The MQTT tap on packets as mqtt.js's own encoder writes them (3.1.1 and 5), fed in pieces as a
 * socket delivers them: refused subscriptions from the broker's SUBACK, refused publishes by the
 * identity's rules, nothing before the broker accepted the login, bounded state, unreadable streams.
 */
import mqttPacket from "mqtt-packet";
import { describe, expect, it } from "vitest";
import { MqttTap } from "../../runner/bus/mqtt-tap.js";
import { MAX_PACKET_HEAD, MqttFramer, MqttWireError, topicMatches } from "../../runner/bus/mqtt-wire.js";
import { MAX_LOG_DENIALS } from "../../runner/bus/denial-tally.js";

const RUN = { runId: "mqtt-agent-0a1b2c3d" };
const ME = "airlock-mqtt-agent-0a1b2c3d-1796356447";

// biome-ignore lint/suspicious/noExplicitAny: mqtt-packet's own packet objects
const enc = (packet: any, protocolVersion = 4): Buffer => mqttPacket.generate(packet, { protocolVersion });

/** Feeds `bytes` to `push` in pieces of `size` (as TCP may cut them). */
function feed(push: (b: Buffer) => void, bytes: Buffer, size = 3): void {
  for (let i = 0; i < bytes.length; i += size) push(bytes.subarray(i, i + size));
}

function session(level: 4 | 5, username = ME) {
  const tap = new MqttTap(["rooms/r1/+/cards", "rooms/r1/chat"], RUN, () => new Date("2026-12-04T10:00:00Z"));
  const c = tap.connection();
  const agent = (p: object, size?: number) => feed((b) => c.fromAgent(b), enc({ ...p }, level), size);
  const broker = (p: object, size?: number) => feed((b) => c.fromBroker(b), enc({ ...p }, level), size);
  agent({
    cmd: "connect",
    protocolId: "MQTT",
    protocolVersion: level,
    clientId: username,
    username,
    password: Buffer.from("secret"),
    will: { topic: "rooms/r1/will", payload: Buffer.from("gone"), qos: 0, retain: false },
    ...(level === 5 ? { properties: { sessionExpiryInterval: 10 } } : {}),
  });
  return { tap, agent, broker };
}

const accepted = (level: 4 | 5) =>
  level === 5 ? { cmd: "connack", reasonCode: 0, sessionPresent: false } : { cmd: "connack", returnCode: 0 };

describe("the MQTT tap", () => {
  for (const level of [4, 5] as const) {
    it(`MQTT ${level === 4 ? "3.1.1" : "5"}: a SUBACK's failure codes are refused subscriptions, in the policy's words`, () => {
      const { tap, agent, broker } = session(level);
      broker(accepted(level));
      agent({
        cmd: "subscribe",
        messageId: 7,
        subscriptions: [
          { topic: "rooms/r1/a/cards", qos: 0 },
          { topic: "rooms/+/secrets/#", qos: 1 },
        ],
      });
      // Another subscription unanswered meanwhile, and a message delivered in between.
      agent({ cmd: "subscribe", messageId: 8, subscriptions: [{ topic: "rooms/r1/chat", qos: 0 }] });
      broker({ cmd: "publish", topic: "rooms/r1/chat", payload: Buffer.alloc(5000, 1), qos: 0 }, 999);
      broker({ cmd: "suback", messageId: 7, granted: [0, level === 5 ? 0x87 : 0x80] });
      broker({ cmd: "suback", messageId: 8, granted: [0] });
      expect(tap.denied()).toEqual([
        {
          broker: "mqtt",
          what: "topic",
          name: "rooms/+/secrets/#",
          action: "subscribe",
          count: 1,
          fix: "add rooms/*/secrets/* to bus.mqtt.subscribe",
          allow: { path: ["bus", "mqtt", "subscribe"], value: "rooms/*/secrets/*" },
          time: "2026-12-04T10:00:00.000Z",
        },
      ]);
    });

    it(`MQTT ${level === 4 ? "3.1.1" : "5"}: a publish outside the identity's topics is refused; one inside is not`, () => {
      const { tap, agent, broker } = session(level);
      broker(accepted(level));
      agent({ cmd: "publish", topic: "rooms/r1/a/cards", payload: "ok", qos: 0 });
      agent({ cmd: "publish", topic: "rooms/r1/chat", payload: Buffer.alloc(200_000, 2), qos: 1, messageId: 3 }, 65536);
      for (let i = 0; i < 3; i++) agent({ cmd: "publish", topic: "rooms/r2/chat", payload: "x", qos: 0 });
      agent({ cmd: "publish", topic: "$SYS/broker/x", payload: "x", qos: 0 });
      expect(tap.denied().map((d) => [d.name, d.action, d.count, d.fix])).toEqual([
        ["rooms/r2/chat", "publish", 3, "add rooms/r2/chat to bus.mqtt.publish"],
        [
          "$SYS/broker/x",
          "publish",
          1,
          "none: the broker's own topics ($SYS, $CONTROL, $share) are never granted to agents",
        ],
      ]);
    });
  }

  it("MQTT 5 topic aliases: a publish by alias is judged by the topic the alias stands for", () => {
    const { tap, agent, broker } = session(5);
    broker(accepted(5));
    agent({
      cmd: "publish",
      topic: "rooms/r9/x",
      payload: "1",
      qos: 0,
      properties: { topicAlias: 2, userProperties: { a: "b" } },
    });
    agent({ cmd: "publish", topic: "", payload: "2", qos: 0, properties: { topicAlias: 2 } });
    expect(tap.denied().map((d) => [d.name, d.count])).toEqual([["rooms/r9/x", 2]]);
  });

  it("nothing is judged before the broker accepts the login, or for another identity", () => {
    const refusedLogin = session(4);
    refusedLogin.agent({ cmd: "publish", topic: "made/up", payload: "x", qos: 0 });
    refusedLogin.broker({ cmd: "connack", returnCode: 5 });
    expect(refusedLogin.tap.denied()).toEqual([]);

    const early = session(4);
    early.agent({ cmd: "publish", topic: "sent/early", payload: "x", qos: 0 });
    early.broker(accepted(4));
    expect(early.tap.denied().map((d) => d.name)).toEqual(["sent/early"]);

    const other = session(4, "airlock-other-run-1796356447");
    other.broker(accepted(4));
    other.agent({ cmd: "publish", topic: "not/mine", payload: "x", qos: 0 });
    other.agent({ cmd: "subscribe", messageId: 1, subscriptions: [{ topic: "not/mine", qos: 0 }] });
    other.broker({ cmd: "suback", messageId: 1, granted: [0x80] });
    expect(other.tap.denied()).toEqual([]);
  });

  it("a flood of distinct refusals is bounded: the rest are counted in one entry", () => {
    const { tap, agent, broker } = session(4);
    broker(accepted(4));
    for (let i = 0; i < MAX_LOG_DENIALS + 300; i++)
      agent({ cmd: "publish", topic: `flood/${i}`, payload: "", qos: 0 }, 4096);
    const denied = tap.denied();
    expect(denied).toHaveLength(MAX_LOG_DENIALS + 1);
    expect(denied.at(-1)).toMatchObject({ name: "(more refusals)", count: 300 });
  });

  it("bytes that are not MQTT, or a packet start too large to read, throw (the gate closes the connection)", () => {
    const http = new MqttTap([], RUN).connection();
    expect(() => http.fromAgent(Buffer.from("GET / HTTP/1.1\r\nHost: x\r\n\r\n"))).toThrow(MqttWireError);
    const huge = new MqttTap([], RUN).connection();
    huge.fromAgent(enc({ cmd: "connect", protocolId: "MQTT", protocolVersion: 4, clientId: ME, username: ME }));
    // A SUBSCRIBE saying it is 256 MB long: its filters would have to be held to be read.
    expect(() => huge.fromAgent(Buffer.from([0x82, 0xff, 0xff, 0xff, 0x7f]))).toThrow(/too large/);
    const endless = new MqttTap([], RUN).connection();
    expect(() => endless.fromAgent(Buffer.from([0x10, 0xff, 0xff, 0xff, 0xff, 0x01]))).toThrow(/four bytes/);
  });

  it("the framer skips what it does not read, without holding it", () => {
    const seen: number[] = [];
    const framer = new MqttFramer(
      () => 0,
      (type) => seen.push(type),
    );
    const big = enc({ cmd: "publish", topic: "t", payload: Buffer.alloc(3 * MAX_PACKET_HEAD), qos: 0 });
    feed((b) => framer.push(b), Buffer.concat([big, enc({ cmd: "pingreq" }), big]), 50_000);
    expect(seen).toEqual([3, 12, 3]);
  });

  it("topic filters match as Mosquitto matches them", () => {
    expect(topicMatches("a/+/c", "a/b/c")).toBe(true);
    expect(topicMatches("a/#", "a")).toBe(true);
    expect(topicMatches("a/#", "a/b/c")).toBe(true);
    expect(topicMatches("a/+", "a/b/c")).toBe(false);
    expect(topicMatches("#", "$SYS/x")).toBe(false);
    expect(topicMatches("a/b", "a/b/")).toBe(false);
  });
});
