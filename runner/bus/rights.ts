/**
 * A run's broker identities: for each broker the policy's bus section names, an identity of its own
 * with exactly the granted rights, minted before the agent starts and revoked when the run ends.
 * Where the runner has no admin access to a broker, the run goes on with the network gate alone and
 * says so (or fails, when the policy or the caller requires rights).
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { BusRightsError } from "../errors.js";
import { brokersStateDir } from "../settings.js";
import type { Endpoint } from "../policy/endpoint.js";
import type { BusKindName } from "./names.js";
import { identityName, newPassword, type AdminSources, type BusDenial } from "./kind.js";
import type { WireTaps } from "./wire-taps.js";
import { BUS_KINDS } from "./registry.js";
import { RememberedByKey } from "../util/remembered.js";

/** One broker a policy grants rights on. */
export interface BusGrant {
  kind: BusKindName;
  endpoint: Endpoint;
  /** The variable that carries the run's credentials. */
  env: string;
  /** The section as written (the kind's own fields). */
  grant: Record<string, unknown>;
}

/** What of a policy its broker identities are made from (a Policy is one). */
export interface RightsPolicy {
  /** The policy's file, for errors. */
  source: string;
  network: { allowedEndpoints: Endpoint[] };
  bus: { grants: BusGrant[]; requireRights: boolean };
}

export interface BusRights {
  /** Variables for the agent: each section's env variable with its credentials. */
  env: Record<string, string>;
  /** What the caller should know (brokers where the agent has full client rights). */
  warnings: string[];
  /** The minted passwords, to keep out of anything the runner records. */
  secrets: string[];
  /** Identities minted, by broker (for the result). */
  identities: { kind: string; endpoint: string; name: string }[];
  /** What the brokers refused the run's identities (call after the agent exited, before revoke). */
  denied(): Promise<BusDenial[]>;
  /** Disable every identity of the run (no login, no right); awaited before the run's result is returned. */
  revoke(): Promise<void>;
  /** What may follow in the background once they are disabled. */
  cleanup(): Promise<void>;
}

export interface BusRightsRequest {
  policy: RightsPolicy;
  runId: string;
  /** What {run} stands for. */
  run: string;
  /** What {agent} stands for. Default "agent". */
  agent?: string;
  expiresAt: number;
  /** Fail instead of warning where rights cannot be enforced (in addition to the policy's bus.requireRights). */
  requireRights?: boolean;
  env?: NodeJS.ProcessEnv;
  /** The runner's record of brokers swept already. */
  sweeps?: BrokerSweeps;
  /** The run's taps on its brokers' connections (wire-taps.ts), for the kinds that read refusals there. */
  taps?: WireTaps;
}

/** The credentials file airlock's local brokers were started with (airlock brokers start). */
export function localBrokersFile(env: NodeJS.ProcessEnv = process.env): string {
  return join(brokersStateDir(env), "admin.json");
}

export function adminSources(env: NodeJS.ProcessEnv = process.env): AdminSources {
  let local: AdminSources["local"];
  try {
    local = JSON.parse(readFileSync(localBrokersFile(env), "utf8")) as AdminSources["local"];
  } catch {
    local = undefined;
  }
  return { env, local };
}

/**
 * The brokers one runner has swept of crashed runners' identities whose time is up: once per broker
 * (the runner owns it; a request without one sweeps every time).
 */
export class BrokerSweeps {
  private readonly swept = new RememberedByKey<string, unknown>();

  once(broker: string, sweep: () => Promise<unknown>): Promise<unknown> {
    return this.swept.get(broker, sweep);
  }
}

export async function openBusRights(req: BusRightsRequest): Promise<BusRights> {
  const result: BusRights = {
    env: {},
    warnings: [],
    secrets: [],
    identities: [],
    denied: async () => [],
    revoke: async () => {},
    cleanup: async () => {},
  };
  const sources = adminSources(req.env ?? process.env);
  result.warnings.push(...loginWarnings(req.policy, sources));
  if (req.policy.bus.grants.length === 0) return result;
  const revokes: (() => Promise<void>)[] = [];
  const cleanups: (() => Promise<void>)[] = [];
  const reports: (() => Promise<BusDenial[]>)[] = [];
  const required = req.requireRights || req.policy.bus.requireRights;
  try {
    for (const grant of req.policy.bus.grants) {
      const kind = BUS_KINDS[grant.kind];
      const where = `${kind.label} at ${grant.endpoint.raw}`;
      const admin = kind.admin(grant.endpoint, sources);
      if (!admin) {
        const fix = `set AIRLOCK_${grant.kind.toUpperCase()}_ADMIN_URL to an admin URL for it, or use airlock's local broker (npx airlock brokers start ${grant.kind})`;
        if (required)
          throw new BusRightsError(
            `${req.policy.source}: bus.${grant.kind}: the runner has no admin access to the ${where}, so it cannot limit the agent's rights there`,
            `${fix}; or remove bus.requireRights`,
          );
        result.warnings.push(
          `the runner has no admin access to the ${where}: the agent gets full client rights there, not only those in bus.${grant.kind} (${fix})`,
        );
        result.env[grant.env] = kind.anonymousEnv(grant.endpoint);
        continue;
      }
      // Once per runner and broker: identities of crashed runners whose time is up. A broker whose
      // sweep fails is swept by the next runner or airlock cleanup; the run goes on.
      const sweep = () => kind.sweep(admin as never, Date.now()).catch(() => []);
      const key = `${grant.kind}|${grant.endpoint.host}:${grant.endpoint.port}`;
      await (req.sweeps ? req.sweeps.once(key, sweep) : sweep());
      const identity = {
        name: identityName(req.runId, req.expiresAt),
        password: newPassword(),
        run: req.run,
        agent: req.agent ?? "agent",
        runId: req.runId,
        expiresAt: req.expiresAt,
      };
      const tap = req.taps?.forEndpoint(grant.endpoint);
      try {
        const minted = await kind.mint(admin as never, {
          grant: grant.grant as never,
          identity,
          endpoint: grant.endpoint,
          envName: grant.env,
          ...(tap ? { tap } : {}),
        });
        Object.assign(result.env, minted.env);
        revokes.push(minted.revoke);
        if (minted.cleanup) cleanups.push(minted.cleanup);
        if (minted.denied) reports.push(minted.denied);
        result.identities.push({ kind: grant.kind, endpoint: grant.endpoint.raw, name: identity.name });
        result.secrets.push(identity.password, encodeURIComponent(identity.password));
      } catch (err) {
        throw new BusRightsError(
          `could not create the agent's identity on the ${where}: ${(err as Error).message}`,
          `check that the broker is running and the admin credentials (${(admin as { source?: string }).source ?? "admin"}) are right`,
          err,
        );
      }
    }
  } catch (err) {
    // Already failing (that error is thrown); what is left expires by its name and the sweep removes it.
    await Promise.all(revokes.map((r) => r().catch(() => {})));
    // Already failing (that error is thrown); what is left expires by its name and the sweep removes it.
    await Promise.all(cleanups.map((c) => c().catch(() => {})));
    throw err;
  }
  result.denied = async () => (await Promise.all(reports.map((r) => r().catch(() => [] as BusDenial[])))).flat();
  result.revoke = async () => {
    const errors = (
      await Promise.all(
        revokes.splice(0).map((r) =>
          r().then(
            () => undefined,
            (e: unknown) => e,
          ),
        ),
      )
    ).filter(Boolean);
    if (errors.length)
      throw new BusRightsError(
        `could not delete ${errors.length} broker identit${errors.length === 1 ? "y" : "ies"} of this run: ${(errors[0] as Error).message}`,
        "they expire by name: the next run or `airlock cleanup` removes them",
      );
  };
  // After the run, in the background: what is left expires by its name and the sweep removes it.
  result.cleanup = async () => void (await Promise.all(cleanups.splice(0).map((c) => c().catch(() => {}))));
  return result;
}

/**
 * Brokers the policy reaches that are airlock's own local ones (which accept only identities airlock
 * mints) but that it grants no rights on: the agent will not be able to log in. Said before the start,
 * with the policy lines to add.
 */
export function loginWarnings(policy: RightsPolicy, sources: AdminSources): string[] {
  const out: string[] = [];
  for (const kind of Object.values(BUS_KINDS)) {
    if (policy.bus.grants.some((g) => g.kind === kind.kind)) continue;
    for (const endpoint of policy.network.allowedEndpoints) {
      const admin = kind.admin(endpoint, sources) as { source?: string } | undefined;
      if (!admin?.source?.startsWith("airlock's local")) continue;
      out.push(
        `${policy.source} reaches ${admin.source} at ${endpoint.raw}, which accepts only the identities airlock mints for a run, and grants no rights there: the agent will not be able to log in. Add bus: { ${kind.kind}: {} } (and what it may use there: README "Bus rights") and connect with the variable it sets (${kind.defaultEnv}); passing a URL through env gives no credentials`,
      );
    }
  }
  return out;
}

/**
 * Remove the broker identities of runs whose time is up (all of airlock's with `all`), on every
 * broker the runner has admin access to. For `airlock cleanup`; every runner also does it once per
 * broker before its first run there.
 */
export async function sweepIdentities(
  options: { all?: boolean; env?: NodeJS.ProcessEnv } = {},
): Promise<{ broker: string; removed: string[]; error?: string }[]> {
  const sources = adminSources(options.env ?? process.env);
  const now = options.all ? Number.MAX_SAFE_INTEGER : Date.now();
  const out: { broker: string; removed: string[]; error?: string }[] = [];
  for (const kind of Object.values(BUS_KINDS)) {
    for (const endpoint of kind.adminEndpoints(sources)) {
      const admin = kind.admin(endpoint, sources);
      if (!admin) continue;
      const broker = `${kind.label} at ${endpoint.raw}`;
      try {
        out.push({ broker, removed: await kind.sweep(admin as never, now) });
      } catch (err) {
        out.push({ broker, removed: [], error: (err as Error).message });
      }
    }
  }
  return out;
}
