/**
 * RabbitMQ rights: a user per run with configure/write/read permissions on one vhost, minted over
 * the management HTTP API (a few ms; rabbitmqctl costs half a second a call).
 *
 * Publishing to a queue goes through an exchange of the run's own (`airlock.<identity>`, direct),
 * which the runner binds to exactly the queues the policy lets the agent publish to: write
 * permission on the default exchange would reach every queue on the vhost. The agent runtime's
 * work queue publishes there (AIRLOCK_AMQP_EXCHANGE). Revoked by deleting the user, which closes its
 * connections at once (clearing permissions would not reach open channels).
 *
 * No right comes along with another: configure (declare, delete, redefine) covers only the prefixes
 * the agent may consume from, its own namespace. A queue named exactly — to publish to, or to
 * consume from, which others feed — is declared by the runner and never configurable by the agent,
 * so a publisher cannot delete or redeclare what it only publishes to, and a consumer cannot
 * redefine a queue others feed (it can take every message from it, which is what consuming is).
 */
import { z } from "zod";
import type { Endpoint } from "../policy/endpoint.js";
import { BrokerLog, logDenials } from "./broker-log.js";
import { deniedFromRabbitmqLog } from "./log-denials.js";
import {
  adminEndpointsFrom,
  adminSourceFor,
  brokerLogPath,
  identityExpiry,
  type AdminSources,
  type BusKind,
  type GrantBase,
} from "./kind.js";
import { namePattern as pattern, patternProblem, resolvePattern, toRegExpSource, escapeRegExp } from "./patterns.js";
import { rabbitmqAmqpPort } from "../settings.js";

const exact = z
  .string()
  .min(1)
  .superRefine((v, ctx) => {
    if (v.endsWith("*"))
      ctx.addIssue({
        code: "custom",
        message: `"${v}" is a prefix; queues to publish to are named exactly (the runner binds each one)`,
        params: { fix: "list each queue, e.g. tasks.{run}" },
      });
    else {
      const p = patternProblem(v);
      if (p) ctx.addIssue({ code: "custom", message: p.message, params: { fix: p.fix } });
    }
  });

export const rabbitmqGrant = z
  .strictObject({
    endpoint: z
      .string()
      .optional()
      .describe("The RabbitMQ as host:port, one of network.allowedEndpoints. Default: the one on port 5672."),
    env: z
      .string()
      .optional()
      .describe("The variable that gets amqp://USER:PASSWORD@host:port/vhost. Default AMQP_URL."),
    vhost: z.string().min(1).optional().describe('The virtual host. Default "/".'),
    queues: z
      .strictObject({
        consume: z
          .array(pattern)
          .optional()
          .describe("Queues the agent may declare and consume from: exact names or prefixes ending in *."),
        publish: z
          .array(exact)
          .optional()
          .describe(
            "Queues the agent may publish to (exact names): the runner declares each and binds it to the run's own exchange.",
          ),
      })
      .optional(),
    exchanges: z
      .strictObject({
        publish: z
          .array(pattern)
          .optional()
          .describe("Exchanges the agent may publish to (never the default exchange)."),
      })
      .optional(),
  })
  .describe("RabbitMQ: a user of its own for each run.");

export type RabbitmqGrant = z.infer<typeof rabbitmqGrant> & GrantBase;

export interface RabbitmqAdmin {
  /** The management API's base URL, e.g. http://127.0.0.1:15672. */
  api: string;
  user: string;
  password: string;
  source: string;
  /** The broker's log, where the runner may read it: its refusals are read from there. */
  log?: string;
}

/** The three permission regexes of a grant, and the queues the runner binds for publishing. */
export function rabbitmqPermissions(
  grant: RabbitmqGrant,
  run: string,
  exchange: string,
  agent?: string,
): { configure: string; write: string; read: string; publishQueues: string[]; consumeQueues: string[] } {
  const consume = (grant.queues?.consume ?? []).map((p) => resolvePattern(p, run, agent));
  const publishQueues = (grant.queues?.publish ?? []).map((p) => resolvePattern(p, run, agent).name);
  const exchanges = (grant.exchanges?.publish ?? []).map((p) => resolvePattern(p, run, agent));
  const writeNames = [...exchanges.map((e) => escapeRegExp(e.name) + (e.prefix ? ".*" : "")), escapeRegExp(exchange)];
  return {
    // Only the agent's own namespaces (consume prefixes); never a queue named exactly.
    configure: toRegExpSource(consume.filter((c) => c.prefix)),
    write: `^(${writeNames.join("|")})$`,
    read: toRegExpSource(consume),
    publishQueues,
    // Declared by the runner, so that the agent needs no configure on them.
    consumeQueues: consume.filter((c) => !c.prefix).map((c) => c.name),
  };
}

async function api(admin: RabbitmqAdmin, method: string, path: string, body?: unknown): Promise<unknown> {
  const res = await fetch(`${admin.api.replace(/\/$/, "")}/api/${path}`, {
    method,
    headers: {
      authorization: `Basic ${Buffer.from(`${admin.user}:${admin.password}`).toString("base64")}`,
      ...(body !== undefined ? { "content-type": "application/json" } : {}),
    },
    ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
    signal: AbortSignal.timeout(10_000),
  });
  if (res.status === 404 && method === "DELETE") return undefined;
  if (!res.ok) throw new Error(`${method} /api/${path}: ${res.status} ${(await res.text()).slice(0, 200)}`);
  const text = await res.text();
  return text ? JSON.parse(text) : undefined;
}

const enc = encodeURIComponent;

export const rabbitmqKind: BusKind<RabbitmqGrant, RabbitmqAdmin> = {
  kind: "rabbitmq",
  label: "RabbitMQ",
  defaultPort: 5672,
  defaultEnv: "AMQP_URL",
  grantSchema: rabbitmqGrant,

  adminEndpoints: (sources) => adminEndpointsFrom(sources, "rabbitmq", 15672, rabbitmqAmqpPort(sources.env)),

  admin(endpoint: Endpoint, sources: AdminSources): RabbitmqAdmin | undefined {
    // The management API is on its own port; it belongs to the broker on the same host.
    const found = adminSourceFor(sources, "rabbitmq", endpoint, 15672, rabbitmqAmqpPort(sources.env));
    if (!found) return undefined;
    const log = brokerLogPath(sources, "rabbitmq", endpoint);
    if ("url" in found)
      return {
        api: `${found.url.protocol}//${found.url.host}`,
        user: decodeURIComponent(found.url.username),
        password: decodeURIComponent(found.url.password),
        source: found.source,
        ...(log ? { log } : {}),
      };
    return {
      api: String(found.local.api),
      user: String(found.local.user),
      password: String(found.local.password),
      source: found.source,
      ...(log ? { log } : {}),
    };
  },

  anonymousEnv: (endpoint) => `amqp://${endpoint.host}:${endpoint.port}`,

  async mint(admin, { grant, identity, endpoint, envName }) {
    const vhost = grant.vhost ?? "/";
    const exchange = `airlock.${identity.name}`;
    const perms = rabbitmqPermissions(grant, identity.run, exchange, identity.agent);
    // Read from here on: what the broker refuses this identity, as its log says.
    const log = admin.log ? await BrokerLog.at(admin.log) : undefined;
    await api(admin, "PUT", `users/${enc(identity.name)}`, { password: identity.password, tags: "" });
    // Deleting the user disables it (and closes its connections); its exchange can go afterwards.
    const revoke = async () => void (await api(admin, "DELETE", `users/${enc(identity.name)}`));
    const cleanup = async () => void (await api(admin, "DELETE", `exchanges/${enc(vhost)}/${enc(exchange)}`));
    try {
      await api(admin, "PUT", `exchanges/${enc(vhost)}/${enc(exchange)}`, {
        type: "direct",
        durable: true,
        auto_delete: false,
      });
      // The queues named exactly, as the agent runtime declares them (durable), before the agent can.
      for (const queue of new Set([...perms.publishQueues, ...perms.consumeQueues]))
        await api(admin, "PUT", `queues/${enc(vhost)}/${enc(queue)}`, { durable: true });
      for (const queue of perms.publishQueues)
        await api(admin, "POST", `bindings/${enc(vhost)}/e/${enc(exchange)}/q/${enc(queue)}`, { routing_key: queue });
      await api(admin, "PUT", `permissions/${enc(vhost)}/${enc(identity.name)}`, {
        configure: perms.configure,
        write: perms.write,
        read: perms.read,
      });
    } catch (err) {
      // Already failing (that error is thrown); what is left expires by its name and the sweep removes it.
      await revoke().catch(() => {});
      // Already failing (that error is thrown); what is left expires by its name and the sweep removes it.
      await cleanup().catch(() => {});
      throw err;
    }
    return {
      env: {
        [envName]: `amqp://${enc(identity.name)}:${enc(identity.password)}@${endpoint.host}:${endpoint.port}/${enc(vhost)}`,
        AIRLOCK_AMQP_EXCHANGE: exchange,
        // The queues the runner declared for the run: declaring one again is a passive check (the SDK's scripts).
        AIRLOCK_AMQP_QUEUES: [...new Set([...perms.publishQueues, ...perms.consumeQueues])].join(","),
      },
      ...(log
        ? { denied: logDenials(log, `'${identity.name}'`, (lines) => deniedFromRabbitmqLog(lines, identity.name)) }
        : {}),
      revoke,
      cleanup,
    };
  },

  async sweep(admin, now) {
    const users = (await api(admin, "GET", "users")) as { name: string }[];
    const stale = users.map((u) => u.name).filter((n) => (identityExpiry(n) ?? Infinity) < now);
    // A stale user that resists is tried again by the next sweep.
    for (const name of stale) await api(admin, "DELETE", `users/${enc(name)}`).catch(() => {});
    const exchanges = (await api(admin, "GET", "exchanges")) as { name: string; vhost: string }[];
    for (const e of exchanges.filter(
      (x) => x.name.startsWith("airlock.") && (identityExpiry(x.name.slice(8)) ?? Infinity) < now,
    )) {
      // A stale exchange that resists is tried again by the next sweep.
      await api(admin, "DELETE", `exchanges/${enc(e.vhost)}/${enc(e.name)}`).catch(() => {});
    }
    return stale;
  },
};
