/**
 * Redis rights: one ACL user per run (ACL SETUSER, one round trip), with key patterns (~, %R~, %W~)
 * and channel patterns (&), and only the commands the granted rights need. Never granted, whatever
 * the policy says: @admin and @dangerous (MIGRATE, REPLICAOF/SLAVEOF, CONFIG, MODULE, DEBUG,
 * SHUTDOWN, FLUSHALL, KEYS, CLIENT KILL, ...), FLUSHDB, SCAN and RANDOMKEY (they ignore key patterns),
 * scripting and functions (`+@write` brings in FUNCTION FLUSH), SELECT and PUBSUB introspection.
 * Revoked with ACL DELUSER, which closes the user's open connections (`off` would not).
 *
 * Redis cannot tell publish from subscribe per channel: the channels of both lists are granted to
 * both, and PUBLISH is granted only when publish lists something, SUBSCRIBE only when subscribe does.
 */
import { z } from "zod";
import type { Endpoint } from "../policy/endpoint.js";
import {
  adminEndpointsFrom,
  adminSourceFor,
  identityExpiry,
  type AdminSources,
  type BusDenial,
  type BusKind,
  type GrantBase,
} from "./kind.js";
import { namePattern as pattern, resolvePattern, toRedisGlob } from "./patterns.js";

const patterns = (what: string) => z.array(pattern).optional().describe(what);

export const redisGrant = z
  .strictObject({
    endpoint: z
      .string()
      .optional()
      .describe("The Redis as host:port, one of network.allowedEndpoints. Default: the one on port 6379."),
    env: z.string().optional().describe("The variable that gets redis://USER:PASSWORD@host:port. Default REDIS_URL."),
    publish: patterns("Channels the agent may PUBLISH to: exact names or prefixes ending in *, {run} is the run's id."),
    subscribe: patterns("Channels the agent may SUBSCRIBE (or PSUBSCRIBE with the same pattern) to."),
    keys: z
      .strictObject({ read: patterns("Keys it may read."), write: patterns("Keys it may write (and read).") })
      .optional()
      .describe("Keys the agent may use; requests for any other key are refused (NOPERM)."),
  })
  .describe("Redis: an ACL user of its own for each run.");

export type RedisGrant = z.infer<typeof redisGrant> & GrantBase;

export interface RedisAdmin {
  /** redis://USER:PASSWORD@HOST:PORT of a user that may run ACL commands. */
  url: string;
  source: string;
}

/** The ACL rules for a grant (the part after `ACL SETUSER name reset on >password`). */
export function aclRules(grant: RedisGrant, run: string, agent?: string): string[] {
  const resolve = (list: string[] | undefined) => (list ?? []).map((p) => resolvePattern(p, run, agent));
  const read = resolve(grant.keys?.read);
  const write = resolve(grant.keys?.write);
  const publish = resolve(grant.publish);
  const subscribe = resolve(grant.subscribe);
  const rules = [
    "resetkeys",
    "resetchannels",
    "-@all",
    "+@connection",
    "-client",
    "+client|setname",
    "+client|getname",
    "+client|id",
    "+client|info",
  ];
  for (const p of write) rules.push(`~${toRedisGlob(p)}`);
  for (const p of read) rules.push(`%R~${toRedisGlob(p)}`);
  for (const p of [...publish, ...subscribe]) rules.push(`&${toRedisGlob(p)}`);
  if (read.length || write.length) rules.push("+@read", "+@transaction", "+exists", "+type", "+ttl", "+pttl");
  if (write.length) rules.push("+@write");
  if (publish.length) rules.push("+publish");
  if (subscribe.length) rules.push("+subscribe", "+psubscribe", "+unsubscribe", "+punsubscribe");
  // Last, so nothing above can bring them back.
  rules.push(
    "-@admin",
    "-@dangerous",
    "-@scripting",
    "-function",
    "-flushdb",
    "-flushall",
    "-scan",
    "-keys",
    "-randomkey",
    "-select",
    "-pubsub",
    "-migrate",
    "-move",
    "-swapdb",
    "-monitor",
    "-sort",
    "-sort_ro",
  );
  return rules;
}

async function withAdmin<T>(admin: RedisAdmin, work: (redis: import("ioredis").Redis) => Promise<T>): Promise<T> {
  const { Redis } = await import("ioredis");
  const redis = new Redis(admin.url, {
    lazyConnect: true,
    maxRetriesPerRequest: 1,
    enableReadyCheck: false,
    connectTimeout: 3000,
    retryStrategy: () => null,
  });
  redis.on("error", () => {});
  try {
    await redis.connect();
    return await work(redis);
  } finally {
    redis.disconnect();
  }
}

export const redisKind: BusKind<RedisGrant, RedisAdmin> = {
  kind: "redis",
  label: "Redis",
  defaultPort: 6379,
  defaultEnv: "REDIS_URL",
  grantSchema: redisGrant,

  adminEndpoints: (sources) => adminEndpointsFrom(sources, "redis", 6379),

  admin(endpoint: Endpoint, sources: AdminSources): RedisAdmin | undefined {
    const found = adminSourceFor(sources, "redis", endpoint, 6379);
    if (!found) return undefined;
    if ("url" in found) return { url: found.url.href, source: found.source };
    const l = found.local;
    return {
      url: `redis://${encodeURIComponent(String(l.user))}:${encodeURIComponent(String(l.password))}@${l.host}:${l.port}`,
      source: found.source,
    };
  },

  anonymousEnv: (endpoint) => `redis://${endpoint.host}:${endpoint.port}`,

  async mint(admin, { grant, identity, endpoint, envName }) {
    await withAdmin(admin, (redis) =>
      redis.call(
        "ACL",
        "SETUSER",
        identity.name,
        "reset",
        "on",
        `>${identity.password}`,
        ...aclRules(grant, identity.run, identity.agent),
      ),
    );
    return {
      env: {
        [envName]: `redis://${encodeURIComponent(identity.name)}:${encodeURIComponent(identity.password)}@${endpoint.host}:${endpoint.port}`,
      },
      denied: () =>
        withAdmin(admin, async (redis) =>
          deniedFromAclLog((await redis.call("ACL", "LOG", "128")) as unknown[], identity.name),
        ),
      revoke: () => withAdmin(admin, (redis) => redis.call("ACL", "DELUSER", identity.name)).then(() => {}),
    };
  },

  async sweep(admin, now) {
    return withAdmin(admin, async (redis) => {
      const users = (await redis.call("ACL", "USERS")) as string[];
      const stale = users.filter((u) => (identityExpiry(u) ?? Infinity) < now);
      if (stale.length) await redis.call("ACL", "DELUSER", ...stale);
      return stale;
    });
  },
};

/** Commands that change a key: a refused one needs keys.write (the rest, keys.read). */
const WRITES =
  /^(set|setnx|setex|psetex|getset|getdel|getex|mset|msetnx|append|incr|incrby|incrbyfloat|decr|decrby|del|unlink|expire|pexpire|expireat|pexpireat|persist|rename|renamenx|hset|hsetnx|hmset|hdel|hincrby|hincrbyfloat|lpush|rpush|lpushx|rpushx|lpop|rpop|lset|lrem|ltrim|linsert|lmove|blmove|rpoplpush|brpoplpush|blpop|brpop|sadd|srem|spop|smove|zadd|zrem|zincrby|zpopmin|zpopmax|bzpopmin|bzpopmax|xadd|xdel|xtrim|xgroup|xack|xclaim|xautoclaim|xreadgroup|copy|restore|setrange|setbit|bitop|pfadd|pfmerge|geoadd)$/;

/** Never granted, whatever a policy says: the fix is not a policy line. */
const NEVER =
  /^(migrate|replicaof|slaveof|config|module|debug|shutdown|flushall|flushdb|keys|scan|randomkey|select|acl|client|monitor|eval|evalsha|script|function|fcall|save|bgsave|bgrewriteaof|sort|swapdb|move|pubsub|info)/;

/** ACL LOG entries (flat [field, value, ...] lists) of one user, as denials with their fix. */
export function deniedFromAclLog(log: unknown[], user: string, now = Date.now()): BusDenial[] {
  const byKey = new Map<string, BusDenial>();
  for (const raw of log) {
    const fields = raw as (string | number)[];
    const e: Record<string, string> = {};
    for (let i = 0; i + 1 < fields.length; i += 2) e[String(fields[i])] = String(fields[i + 1]);
    if (e.username !== user || e.reason === "auth") continue;
    const command = /(?:^| )cmd=(\S+)/.exec(e["client-info"] ?? "")?.[1];
    const what = e.reason === "key" ? "key" : e.reason === "channel" ? "channel" : "command";
    const name = what === "command" ? (e.object ?? "").toLowerCase() : (e.object ?? "");
    const fix =
      what === "key"
        ? `add a pattern for ${name} to bus.redis.keys.read (or keys.write)`
        : what === "channel"
          ? `add ${name} to bus.redis.${command === "publish" ? "publish" : "subscribe"}`
          : NEVER.test(name)
            ? "none: never granted to agents"
            : "grant keys (read/write), publish or subscribe in bus.redis: commands follow from those";
    const key = `${what}|${name}|${command ?? ""}`;
    const prev = byKey.get(key);
    const count = Number(e.count ?? 1);
    // The entry's first refusal: ACL LOG says how long ago it was created (timestamp-created, Redis 7.2+, says when).
    const created = Number(e["timestamp-created"]) || now - Number(e["age-seconds"] ?? 0) * 1000;
    const time = Number.isFinite(created) ? new Date(created).toISOString() : undefined;
    const action =
      what === "channel"
        ? command === "publish"
          ? "publish"
          : "subscribe"
        : what === "key"
          ? (command ?? "use")
          : "command";
    const allow =
      what === "key"
        ? { path: ["bus", "redis", "keys", WRITES.test(command ?? "") ? "write" : "read"], value: name }
        : what === "channel"
          ? { path: ["bus", "redis", action], value: name }
          : undefined;
    if (prev) {
      prev.count += count;
      if (time && (!prev.time || time < prev.time)) prev.time = time;
    } else
      byKey.set(key, {
        broker: "redis",
        what,
        name,
        ...(command ? { command } : {}),
        action,
        count,
        fix,
        ...(what === "command" && NEVER.test(name) ? { never: true } : {}),
        ...(time ? { time } : {}),
        ...(allow ? { allow } : {}),
      });
  }
  return [...byKey.values()];
}
