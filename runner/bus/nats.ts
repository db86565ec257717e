/**
 * NATS rights: one user per run in a users file the runner owns (included by the server's
 * `authorization` block), with publish/subscribe permissions on exactly the policy's subjects, and
 * an inbox prefix of its own (`_INBOX_<identity>`, never `_INBOX.>`, which would let it read every
 * other client's replies). The server reloads the file on SIGHUP; the runner waits until the
 * monitoring endpoint says it has. A revoked user's open connections are closed by the reload.
 * Debian's nats-server (2.9) has no auth callout, so this needs the server's file and pid: the local
 * broker that `airlock brokers start nats` runs.
 */
import { z } from "zod";
import type { Endpoint } from "../policy/endpoint.js";
import { BrokerLog, logDenials } from "./broker-log.js";
import { deniedFromNatsLog } from "./log-denials.js";
import {
  adminEndpointsFrom,
  adminSourceFor,
  brokerLogPath,
  identityExpiry,
  type AdminSources,
  type BusKind,
  type GrantBase,
} from "./kind.js";
import { resolvePattern, type NamePattern } from "./patterns.js";
import { tokenPatterns, toTokenWildcards } from "./token-patterns.js";
import { updateUsersFile, type NatsUserEntry } from "./nats-users.js";

const subjects = tokenPatterns(".", "NATS subjects", "jobs.{run}.*");

export const natsGrant = z
  .strictObject({
    endpoint: z
      .string()
      .optional()
      .describe("The NATS server as host:port, one of network.allowedEndpoints. Default: the one on port 4222."),
    env: z
      .string()
      .optional()
      .describe(
        "The variable that gets nats://USER:PASSWORD@host:port. Default NATS_URL (and AIRLOCK_NATS_INBOX_PREFIX the run's own inbox prefix).",
      ),
    publish: subjects
      .optional()
      .describe(
        "Subjects the agent may publish to: tokens, where * is one token (or, last, the rest); {run} is the run's id, {agent} the agent's name.",
      ),
    subscribe: subjects.optional().describe("Subjects the agent may subscribe to (its own inbox is always granted)."),
    reply: z
      .boolean()
      .optional()
      .describe(
        "May answer requests it received (one reply to each request's reply subject), without publish rights there.",
      ),
  })
  .describe("NATS: a user of its own for each run, with its own inbox prefix.");

export type NatsGrant = z.infer<typeof natsGrant> & GrantBase;

export interface NatsAdmin {
  /** The users file the server's authorization block includes. */
  users: string;
  /** The server's pid file (SIGHUP reloads it). */
  pid: string;
  /** Monitoring endpoint (/varz says when the configuration was last loaded). */
  monitor: string;
  /** The runner's own login, kept in the file. */
  user: string;
  password: string;
  source: string;
  /** The server's log, where the runner may read it: its refusals are read from there. */
  log?: string;
}

/** A NATS subject for a name pattern: a prefix `a.b.` becomes `a.b.>`, a `*` token stays NATS's own `*`. */
export function toNatsSubject(p: NamePattern): string {
  return toTokenWildcards(p.name, p.prefix, ".", "*", ">");
}

export function inboxPrefix(identity: string): string {
  return `_INBOX_${identity.replace(/[^A-Za-z0-9_-]/g, "_")}`;
}

/** The permissions block of a grant (nothing granted is an explicit deny: an empty allow list would allow everything). */
export function natsPermissions(
  grant: NatsGrant,
  run: string,
  identity: string,
  agent?: string,
): NatsUserEntry["permissions"] {
  const resolve = (list: string[] | undefined) => (list ?? []).map((p) => toNatsSubject(resolvePattern(p, run, agent)));
  const publish = resolve(grant.publish);
  const subscribe = [...resolve(grant.subscribe), `${inboxPrefix(identity)}.>`];
  return {
    publish: publish.length ? { allow: publish } : { deny: [">"] },
    subscribe: { allow: subscribe },
    ...(grant.reply ? { allow_responses: { max: 1 } } : {}),
  };
}

export const natsKind: BusKind<NatsGrant, NatsAdmin> = {
  kind: "nats",
  label: "NATS",
  defaultPort: 4222,
  defaultEnv: "NATS_URL",
  grantSchema: natsGrant,

  adminEndpoints: (sources) => adminEndpointsFrom(sources, "nats", 4222).filter((e) => natsKind.admin(e, sources)),

  admin(endpoint: Endpoint, sources: AdminSources): NatsAdmin | undefined {
    // Only where the runner can write the server's users file and signal it: the local broker.
    const found = adminSourceFor(sources, "nats", endpoint, 4222);
    if (!found || !("local" in found) || !found.local.users || !found.local.pid) return undefined;
    const l = found.local;
    return {
      users: String(l.users),
      pid: String(l.pid),
      monitor: String(l.monitor),
      user: String(l.user),
      password: String(l.password),
      source: found.source,
      ...(l.log || sources.env.AIRLOCK_NATS_LOG ? { log: brokerLogPath(sources, "nats", endpoint)! } : {}),
    };
  },

  anonymousEnv: (endpoint) => `nats://${endpoint.host}:${endpoint.port}`,

  async mint(admin, { grant, identity, endpoint, envName }) {
    const entry: NatsUserEntry = {
      user: identity.name,
      password: identity.password,
      permissions: natsPermissions(grant, identity.run, identity.name, identity.agent),
    };
    // Read from here on: what the server refuses this identity, as its log says.
    const log = admin.log ? await BrokerLog.at(admin.log) : undefined;
    await updateUsersFile(admin, (users) => users.set(identity.name, entry));
    return {
      env: {
        [envName]: `nats://${encodeURIComponent(identity.name)}:${encodeURIComponent(identity.password)}@${endpoint.host}:${endpoint.port}`,
        AIRLOCK_NATS_INBOX_PREFIX: inboxPrefix(identity.name),
      },
      ...(log
        ? { denied: logDenials(log, `"${identity.name}"`, (lines) => deniedFromNatsLog(lines, identity.name)) }
        : {}),
      revoke: () => updateUsersFile(admin, (users) => users.delete(identity.name)).then(() => {}),
    };
  },

  async sweep(admin, now) {
    const stale: string[] = [];
    await updateUsersFile(admin, (users) => {
      for (const name of users.keys())
        if ((identityExpiry(name) ?? Infinity) < now) stale.push(name) && users.delete(name);
    });
    return stale;
  },
};
