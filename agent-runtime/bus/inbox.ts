/**
 * Inboxes over NATS: each agent has an inbox subject; `send` waits for a delivery receipt and
 * retries (the same message, so the receiver counts it once); envelopes carry a message id, thread
 * id, trace id, expiry, idempotency key and schema version; an expired message is refused with a
 * receipt that says so, a duplicate is acknowledged without being handled again; `request` gets the
 * handler's answer. Subjects are inbox.<ns>.<to>.<from>, so a policy can hold each agent to sending
 * as itself and reading only its own inbox:
 *
 *   bus: { nats: { publish: ["inbox.{run}.*.{agent}"], subscribe: ["inbox.{run}.{agent}.*"], reply: true } }
 *
 * (reply: true lets the receiver answer on the sender's own inbox prefix with the receipt.)
 */
import type { Msg, NatsConnection } from "nats";
import { onAbort } from "../abort.js";
import { check, type Schema } from "./codec.js";
import { BusPermissionError, RequestTimeoutError } from "./errors.js";
import { busAgent, messageId, runNamespace, token } from "./names.js";

export const INBOX_SCHEMA_VERSION = 1;

export interface Envelope<T> {
  id: string;
  from: string;
  to: string;
  threadId: string;
  traceId: string;
  ts: number;
  /** Epoch ms after which the receiver refuses it. */
  expiresAt?: number;
  /** Duplicates (same key) are acknowledged once handled, and not handled again. Default: the id. */
  idempotencyKey?: string;
  schemaVersion: number;
  kind: "send" | "request";
  body: T;
}

export type ReceiptStatus = "delivered" | "duplicate" | "expired" | "rejected";

export interface Receipt<R = unknown> {
  id: string;
  status: ReceiptStatus;
  /** Sends it took (retries after a lost receipt count). */
  attempts: number;
  reason?: string;
  /** A request's answer. */
  reply?: R;
}

export interface SendOptions {
  threadId?: string;
  traceId?: string;
  /** The message expires this long after it is sent. */
  ttlMs?: number;
  idempotencyKey?: string;
  /** How long to wait for each receipt. Default 2000 ms. */
  timeoutMs?: number;
  /** Sends after the first when no receipt came. Default 3. */
  retries?: number;
}

export interface Inbox<T> {
  readonly subject: string;
  send(to: string, body: T, options?: SendOptions): Promise<Receipt>;
  /** Like send, and resolves with the handler's answer (RequestTimeoutError without one). */
  request<R>(to: string, body: T, options?: SendOptions): Promise<R>;
  /** Handle messages for this agent until `limit` were handled or the signal; resolves with the count. */
  receive<R>(
    handler: (message: Envelope<T>) => R | Promise<R>,
    options?: { limit?: number; signal?: AbortSignal; onReady?: () => void },
  ): Promise<number>;
  /** What receive() did with each message it got: for logs and tests. */
  readonly log: { id: string; from: string; status: ReceiptStatus; reason?: string }[];
}

export function inbox<T>(
  client: () => Promise<NatsConnection>,
  options: { namespace?: string; schema?: Schema<T>; dedupeWindowMs?: number } = {},
): Inbox<T> {
  const ns = token(options.namespace ?? runNamespace(), "an inbox namespace");
  const me = busAgent();
  const seen = new Map<string, { at: number; receipt: Omit<Receipt, "attempts"> }>();
  const dedupeWindowMs = options.dedupeWindowMs ?? 10 * 60_000;
  const log: Inbox<T>["log"] = [];

  const deliver = async (to: string, body: T, kind: Envelope<T>["kind"], o: SendOptions): Promise<Receipt> => {
    const nc = await client();
    const id = messageId();
    const envelope: Envelope<T> = {
      id,
      from: me,
      to: token(to, "a recipient"),
      threadId: o.threadId ?? id,
      traceId: o.traceId ?? messageId(),
      ts: Date.now(),
      ...(o.ttlMs !== undefined ? { expiresAt: Date.now() + o.ttlMs } : {}),
      ...(o.idempotencyKey ? { idempotencyKey: o.idempotencyKey } : {}),
      schemaVersion: INBOX_SCHEMA_VERSION,
      kind,
      body: check(body, options.schema, `message to ${to}`),
    };
    const data = new TextEncoder().encode(JSON.stringify(envelope));
    const timeoutMs = o.timeoutMs ?? 2000;
    const attempts = 1 + (o.retries ?? 3);
    // A recipient that is not listening yet (no responders) is waited for, up to what all the attempts could take.
    const deadline = Date.now() + attempts * timeoutMs;
    let last: unknown;
    let sent = 0;
    while (sent < attempts) {
      sent++;
      try {
        const answer = await nc.request(`inbox.${ns}.${envelope.to}.${me}`, data, { timeout: timeoutMs });
        return { ...(JSON.parse(new TextDecoder().decode(answer.data)) as Omit<Receipt, "attempts">), attempts: sent };
      } catch (err) {
        last = err;
        const code = (err as { code?: string }).code;
        if (code === "PERMISSIONS_VIOLATION")
          throw new BusPermissionError(
            `nats: the policy does not let this agent send to ${to}'s inbox: add inbox.{run}.*.{agent} to bus.nats.publish`,
          );
        if (code === "503" && Date.now() < deadline) {
          // Nobody listens there yet: the message was not delivered, so this was not an attempt.
          sent--;
          await new Promise((r) => setTimeout(r, 100));
          continue;
        }
        // TIMEOUT: the receipt was lost or late. The same message again (the receiver counts it once).
        await new Promise((r) => setTimeout(r, Math.min(100 * sent, 500)));
      }
    }
    throw new RequestTimeoutError(
      `no receipt from ${to} for message ${id} after ${sent} attempts (${(last as Error)?.message ?? "timeout"})`,
    );
  };

  const self: Inbox<T> = {
    subject: `inbox.${ns}.${me}`,
    log,
    send: (to, body, o = {}) => deliver(to, body, "send", o),
    async request<R>(to: string, body: T, o: SendOptions = {}) {
      const receipt = await deliver(to, body, "request", o);
      if (receipt.status !== "delivered" && receipt.status !== "duplicate")
        throw new RequestTimeoutError(
          `${to} did not answer message ${receipt.id}: ${receipt.status}${receipt.reason ? ` (${receipt.reason})` : ""}`,
        );
      return receipt.reply as R;
    },
    async receive<R>(
      handler: (message: Envelope<T>) => R | Promise<R>,
      { limit = Infinity, signal, onReady }: { limit?: number; signal?: AbortSignal; onReady?: () => void } = {},
    ) {
      // A stopped agent takes no new messages.
      if (signal?.aborted) return 0;
      const nc = await client();
      const sub = nc.subscribe(`inbox.${ns}.${me}.*`);
      await nc.flush();
      onReady?.();
      // Also a stop that came while the subscription was being made.
      onAbort(signal, () => sub.unsubscribe());
      let handled = 0;
      const answer = (m: Msg, r: Omit<Receipt, "attempts">, from: string) => {
        log.push({ id: r.id, from, status: r.status, ...(r.reason ? { reason: r.reason } : {}) });
        if (m.reply) m.respond(new TextEncoder().encode(JSON.stringify(r)));
      };
      for await (const m of sub) {
        const from = m.subject.split(".")[3] ?? "";
        let e: Envelope<unknown>;
        try {
          e = JSON.parse(new TextDecoder().decode(m.data)) as Envelope<unknown>;
        } catch {
          answer(m, { id: "?", status: "rejected", reason: "not an envelope" }, from);
          continue;
        }
        const now = Date.now();
        for (const [k, v] of seen) if (now - v.at > dedupeWindowMs) seen.delete(k);
        const key = `${from}|${e.idempotencyKey ?? e.id}`;
        const before = seen.get(key);
        if (before) {
          answer(m, { ...before.receipt, id: e.id, status: "duplicate" }, from);
          continue;
        }
        if (e.expiresAt !== undefined && e.expiresAt < now) {
          answer(m, { id: e.id, status: "expired", reason: `expired ${now - e.expiresAt} ms before it arrived` }, from);
          continue;
        }
        if (Math.floor(e.schemaVersion) > INBOX_SCHEMA_VERSION) {
          answer(
            m,
            {
              id: e.id,
              status: "rejected",
              reason: `schema version ${e.schemaVersion}; this agent reads ${INBOX_SCHEMA_VERSION}`,
            },
            from,
          );
          continue;
        }
        let body: T;
        try {
          body = check(e.body, options.schema, `message from ${from}`);
        } catch (err) {
          answer(m, { id: e.id, status: "rejected", reason: (err as Error).message }, from);
          continue;
        }
        // The sender is the one in the subject (the broker held it to its own), never a claim in the body.
        const reply = await handler({ ...(e as Envelope<T>), from, body });
        const receipt: Omit<Receipt, "attempts"> = {
          id: e.id,
          status: "delivered",
          ...(e.kind === "request" ? { reply } : {}),
        };
        seen.set(key, { at: now, receipt });
        answer(m, receipt, from);
        if (++handled >= limit) break;
      }
      // The last receipt is on the server before this agent moves on (and may exit).
      await nc.flush().catch(() => {});
      sub.unsubscribe();
      return handled;
    },
  };
  return self;
}
