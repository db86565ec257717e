/**
 * One broker kind behind one small interface: the rights a policy may grant on it (a zod schema
 * for the policy's bus.<kind> section), where the runner's admin access to it comes from, how an
 * identity with exactly those rights is minted and revoked, and how a crashed runner's leftovers
 * are swept. A new broker kind is a new file implementing this, listed in registry.ts.
 */
import { randomBytes } from "node:crypto";
import type { z } from "zod";
import type { Endpoint } from "../policy/endpoint.js";

/** The fields every kind's section has. */
export interface GrantBase {
  /** host:port of the broker; must be one of network.allowedEndpoints. Default: the one with the kind's port. */
  endpoint?: string;
  /** The variable that carries the credentials into the agent. */
  env?: string;
}

export interface BusIdentity {
  /** airlock-<runId>-<expires, epoch seconds>: a sweep finds a crashed runner's leftovers by name alone. */
  name: string;
  password: string;
  /** What {run} stands for in the policy's names. */
  run: string;
  /** What {agent} stands for (busAgentToken of the agent's name). */
  agent: string;
  runId: string;
  expiresAt: number;
}

/** Something the broker refused the run's identity, with the policy line that would allow it. */
export interface BusDenial {
  broker: string;
  /** key, channel, queue, topic, command, ... */
  what: string;
  name: string;
  /** The command or operation that was refused, where the broker says. */
  command?: string;
  /** publish, subscribe, consume, produce, declare, command, ...: what the agent tried, in the policy's words. */
  action?: string;
  count: number;
  /** The policy line that would allow it, or (with `never`) why none can. */
  fix: string;
  /** No policy line can allow it (CONFIG, $SYS, another run's inbox, the default exchange). */
  never?: boolean;
  /** When the broker first refused it, where the broker says (ISO 8601). */
  time?: string;
  /** The fix as data: the policy list (or flag) to add `value` to; what `airlock learn` applies. */
  allow?: PolicyAddition;
}

/** What makes two denials the same one (counted together): what, which name, which action. */
export function denialKey(d: Pick<BusDenial, "what" | "name" | "action" | "command">): string {
  return `${d.what}|${d.name}|${d.action ?? d.command ?? ""}`;
}

/** One addition to a policy: `value` into the list at `path` (or, for a flag, set to true). */
export interface PolicyAddition {
  path: string[];
  value: string | true;
}

export interface Minted {
  /** Variables for the agent (credentials in them). */
  env: Record<string, string>;
  /** What the broker refused this identity during the run (read before it is revoked), where the broker keeps a record. */
  denied?(): Promise<BusDenial[]>;
  /**
   * Disable the identity: no login, no right, its open connections closed where the broker allows.
   * Awaited before the run's result is returned.
   */
  revoke(): Promise<void>;
  /** What may follow in the background once the identity is disabled (the run's own broker objects). */
  cleanup?(): Promise<void>;
}

/** One identity to mint: the policy's grant on one broker, and the variable that will carry its credentials. */
export interface MintRequest<Grant> {
  grant: Grant;
  identity: BusIdentity;
  endpoint: Endpoint;
  envName: string;
  /** The run's tap on this broker's connections, when the kind reads its refusals off the wire. */
  tap?: WireTap;
}

/**
 * Refusals read off the agent's own connections to a broker that keeps no record of them
 * (Mosquitto): the gate's forwarder for the broker's endpoint hands every connection's bytes to it
 * as they pass (run/loopback-forwarder.ts). One per run and broker, made before the gate opens.
 */
export interface WireTap {
  /** One agent connection. Its handlers throw when the stream cannot be read; the gate then closes the connection. */
  connection(): TapConnection;
  /** What was refused so far. */
  denied(): BusDenial[];
}

export interface TapConnection {
  fromAgent(chunk: Buffer): void;
  fromBroker(chunk: Buffer): void;
}

/** Who a run's tap reads for: the run's identity names start with `airlock-<runId>-`. */
export interface TapRun {
  runId: string;
  /** What {run} and {agent} stand for. */
  run: string;
  agent: string;
}

export interface BusKind<Grant extends GrantBase = GrantBase, Admin = unknown> {
  readonly kind: string;
  readonly label: string;
  readonly defaultPort: number;
  /** Default for the section's env field. */
  readonly defaultEnv: string;
  readonly grantSchema: z.ZodType<Grant>;
  /** The brokers of this kind the runner has admin access to (for `airlock cleanup`). */
  adminEndpoints(sources: AdminSources): Endpoint[];
  /** The runner's admin access to the broker at `endpoint`, if it has any. */
  admin(endpoint: Endpoint, sources: AdminSources): Admin | undefined;
  mint(admin: Admin, request: MintRequest<Grant>): Promise<Minted>;
  /** The variable's value where the runner has no admin access: the broker's address, without credentials. */
  anonymousEnv(endpoint: Endpoint): string;
  /** Remove identities whose name says they expired before `now`; returns their names. */
  sweep(admin: Admin, now: number): Promise<string[]>;
  /** For a broker that records no refusals: a tap that reads them off the agent's connections (WireTap). */
  wireTap?(grant: Grant, run: TapRun): WireTap;
}

/**
 * The broker's log file, where the runner may read it: AIRLOCK_<KIND>_LOG, else the `log` that
 * scripts/brokers.sh recorded for the local broker it started (only for that broker).
 */
export function brokerLogPath(sources: AdminSources, kind: string, endpoint: Endpoint): string | undefined {
  const own = sources.env[`AIRLOCK_${kind.toUpperCase()}_LOG`];
  if (own) return own;
  const entry = sources.local?.[kind];
  if (entry?.log && sameEndpoint(endpointOf(String(entry.host), Number(entry.port)), endpoint))
    return String(entry.log);
  return undefined;
}

/** Where admin access comes from: the runner's environment, and the local brokers' credentials file. */
export interface AdminSources {
  env: NodeJS.ProcessEnv;
  /** What scripts/brokers.sh (airlock brokers) wrote for the brokers it started. */
  local: Record<string, Record<string, string | number | boolean>> | undefined;
}

export const IDENTITY_PREFIX = "airlock-";

/** The expiry encoded in an identity's name, or undefined when it is not one of airlock's. */
export function identityExpiry(name: string): number | undefined {
  const m = /^airlock-.+-(\d{9,11})$/.exec(name);
  return m ? Number(m[1]) * 1000 : undefined;
}

export function identityName(runId: string, expiresAt: number): string {
  return `${IDENTITY_PREFIX}${runId}-${Math.ceil(expiresAt / 1000)}`;
}

/** host:port of an admin URL, or of the local broker's entry, as an Endpoint. */
export function endpointOf(host: string, port: number): Endpoint {
  return {
    raw: `${host}:${port}`,
    host,
    port,
    kind: host === "localhost" || host.startsWith("127.") ? "loopback" : /^[\d.]+$/.test(host) ? "ipv4" : "dns",
  };
}

/**
 * The brokers a kind has admin access to: the one its AIRLOCK_<KIND>_ADMIN_URL names (its host, and
 * the port from the URL, or `brokerPort` where the URL is a separate API), and the local one.
 */
export function adminEndpointsFrom(
  sources: AdminSources,
  kind: string,
  defaultPort: number,
  brokerPort?: number,
): Endpoint[] {
  const { url, local } = adminFor(sources, kind, defaultPort, brokerPort);
  return [...(url ? [url.broker] : []), ...(local ? [local.broker] : [])];
}

/** A kind's admin URL and local entry, each with the broker it is for. */
function adminFor(sources: AdminSources, kind: string, defaultPort: number, brokerPort?: number) {
  const raw = sources.env[`AIRLOCK_${kind.toUpperCase()}_ADMIN_URL`];
  const u = raw ? new URL(raw) : undefined;
  const entry = sources.local?.[kind];
  return {
    url: u && {
      url: u,
      broker: endpointOf(u.hostname, brokerPort ?? Number(u.port || defaultPort)),
      source: `AIRLOCK_${kind.toUpperCase()}_ADMIN_URL`,
    },
    local: entry && {
      entry,
      broker: endpointOf(String(entry.host), Number(entry.port)),
      source: `airlock's local ${kind}`,
    },
  };
}

/**
 * The admin access a kind has to the broker at `endpoint`: its AIRLOCK_<KIND>_ADMIN_URL when that
 * names this broker, else the local brokers' entry for it; undefined when neither does.
 */
export function adminSourceFor(
  sources: AdminSources,
  kind: string,
  endpoint: Endpoint,
  defaultPort: number,
  brokerPort?: number,
): { url: URL; source: string } | { local: Record<string, string | number | boolean>; source: string } | undefined {
  const { url, local } = adminFor(sources, kind, defaultPort, brokerPort);
  if (url && sameEndpoint(url.broker, endpoint)) return { url: url.url, source: url.source };
  if (local && sameEndpoint(local.broker, endpoint)) return { local: local.entry, source: local.source };
  return undefined;
}

/** The password of a new identity. */
export function newPassword(): string {
  return randomBytes(24).toString("base64url");
}

/** localhost and 127.0.0.1 are the same broker. */
export function sameEndpoint(a: { host: string; port: number }, b: { host: string; port: number }): boolean {
  const norm = (h: string) => (h === "localhost" ? "127.0.0.1" : h.toLowerCase());
  return a.port === b.port && norm(a.host) === norm(b.host);
}
