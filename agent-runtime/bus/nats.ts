/**
 * NATS: a connected nats.js connection from NATS_URL, using the run's own inbox prefix (under bus
 * rights the run may subscribe to its own inbox only, so request/reply needs it).
 */
import type { NatsConnection } from "nats";
import { connectionError, requireEnv } from "./errors.js";

export function natsUrl(): string {
  return requireEnv("NATS_URL", "nats", "nats://localhost:4222");
}

export async function connectNats(name: string): Promise<NatsConnection> {
  const url = new URL(natsUrl());
  const { connect } = await import("nats");
  const endpoint = `${url.hostname}:${url.port || "4222"}`;
  const inboxPrefix = process.env.AIRLOCK_NATS_INBOX_PREFIX;
  try {
    return await connect({
      servers: endpoint,
      name,
      ...(url.username ? { user: decodeURIComponent(url.username), pass: decodeURIComponent(url.password) } : {}),
      ...(inboxPrefix ? { inboxPrefix } : {}),
      timeout: 5000,
      maxReconnectAttempts: 3,
    });
  } catch (err) {
    throw connectionError("nats", [endpoint], err);
  }
}
