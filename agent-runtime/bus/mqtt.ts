/**
 * MQTT: a connected mqtt.js client (MQTT 5, so a refused publish or subscribe is an error, not
 * silence) from MQTT_URL, with the client id the run's identity is bound to (MQTT_CLIENT_ID).
 */
import type { MqttClient } from "mqtt";
import { connectionError, requireEnv } from "./errors.js";

export function mqttUrl(): string {
  return requireEnv("MQTT_URL", "mqtt", "mqtt://localhost:1883");
}

export async function connectMqtt(name: string): Promise<MqttClient> {
  const url = mqttUrl();
  const u = new URL(url);
  const { connectAsync } = await import("mqtt");
  const clientId = process.env.MQTT_CLIENT_ID ?? `${name}-${Math.random().toString(16).slice(2, 10)}`;
  try {
    return await connectAsync(url, {
      clientId,
      protocolVersion: 5,
      connectTimeout: 5000,
      reconnectPeriod: 1000,
      clean: true,
    });
  } catch (err) {
    throw connectionError("mqtt", [`${u.hostname}:${u.port || "1883"}`], err);
  }
}
