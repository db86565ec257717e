/**
 * MQTT rights (Mosquitto's dynamic-security plugin): one client and one role per run, created with a
 * single batched control message over the runner's admin login. The role's ACLs allow publishing
 * and subscribing to exactly the policy's topics; the client is bound to one client id (its own
 * name), so no other agent can take its session over, and it cannot take theirs. Deleting the client
 * disconnects it (DISCONNECT 152). Retained messages on topics it may not publish to (another agent's
 * card, say) are beyond its reach like any other publish.
 */
import { z } from "zod";
import type { Endpoint } from "../policy/endpoint.js";
import {
  adminEndpointsFrom,
  adminSourceFor,
  identityExpiry,
  type AdminSources,
  type BusKind,
  type GrantBase,
} from "./kind.js";
import { dynsec, type MqttAdmin } from "./mqtt-dynsec.js";
import { BrokerLog, logDenials } from "./broker-log.js";
import { deniedFromMosquittoLog } from "./log-denials.js";
import { MqttTap } from "./mqtt-tap.js";
import { resolvePattern, type NamePattern } from "./patterns.js";
import { tokenPatterns, toTokenWildcards } from "./token-patterns.js";

const topics = tokenPatterns("/", "MQTT topics", "rooms/{run}/*");

export const mqttGrant = z
  .strictObject({
    endpoint: z
      .string()
      .optional()
      .describe("The MQTT broker as host:port, one of network.allowedEndpoints. Default: the one on port 1883."),
    env: z
      .string()
      .optional()
      .describe(
        "The variable that gets mqtt://USER:PASSWORD@host:port. Default MQTT_URL (and MQTT_CLIENT_ID the client id the identity must use).",
      ),
    publish: topics
      .optional()
      .describe(
        "Topics the agent may publish to (retained messages too): tokens, where * is one token (or, last, the rest); {run} is the run's id, {agent} the agent's name.",
      ),
    subscribe: topics
      .optional()
      .describe("Topics the agent may subscribe to; a subscription with wildcards must stay inside them."),
  })
  .describe("MQTT: a client and a role of its own for each run (Mosquitto dynamic security).");

export type MqttGrant = z.infer<typeof mqttGrant> & GrantBase;

/** An MQTT topic filter for a name pattern: a prefix `a/b/` becomes `a/b/#`, a `*` token `+`. */
export function toMqttTopic(p: NamePattern): string {
  return toTokenWildcards(p.name, p.prefix, "/", "+", "#");
}

export function mqttAcls(
  grant: MqttGrant,
  run: string,
  agent?: string,
): { acltype: string; topic: string; allow: boolean }[] {
  const resolve = (list: string[] | undefined) => (list ?? []).map((p) => toMqttTopic(resolvePattern(p, run, agent)));
  return [
    ...resolve(grant.publish).map((topic) => ({ acltype: "publishClientSend", topic, allow: true })),
    ...resolve(grant.subscribe).flatMap((topic) => [
      { acltype: "subscribePattern", topic, allow: true },
      { acltype: "unsubscribePattern", topic, allow: true },
    ]),
  ];
}

export const mqttKind: BusKind<MqttGrant, MqttAdmin> = {
  kind: "mqtt",
  label: "MQTT",
  defaultPort: 1883,
  defaultEnv: "MQTT_URL",
  grantSchema: mqttGrant,

  adminEndpoints: (sources) => adminEndpointsFrom(sources, "mqtt", 1883),

  admin(endpoint: Endpoint, sources: AdminSources): MqttAdmin | undefined {
    // mqtt://USER:PASSWORD@HOST:PORT of a client that may use $CONTROL/dynamic-security.
    const found = adminSourceFor(sources, "mqtt", endpoint, 1883);
    if (!found) return undefined;
    // For a broker the gate reaches directly (no forwarder to read refusals off, mqtt-tap.ts): Mosquitto
    // logs a refused publish only at its debug level, read only where a user says (AIRLOCK_MQTT_LOG).
    const log = sources.env.AIRLOCK_MQTT_LOG;
    if ("url" in found)
      return {
        url: `mqtt://${found.url.host}`,
        user: decodeURIComponent(found.url.username),
        password: decodeURIComponent(found.url.password),
        source: found.source,
        ...(log ? { log } : {}),
      };
    const l = found.local;
    return {
      url: `mqtt://${l.host}:${l.port}`,
      user: String(l.user),
      password: String(l.password),
      source: found.source,
      ...(log ? { log } : {}),
    };
  },

  anonymousEnv: (endpoint) => `mqtt://${endpoint.host}:${endpoint.port}`,

  wireTap: (grant, run) =>
    new MqttTap(
      mqttAcls(grant, run.run, run.agent)
        .filter((a) => a.acltype === "publishClientSend")
        .map((a) => a.topic),
      run,
    ),

  async mint(admin, { grant, identity, endpoint, envName, tap }) {
    const name = identity.name;
    // Refusals come off the wire where the gate forwards the broker's connections; else from a debug-level log a user names.
    const mqttTap = tap instanceof MqttTap ? tap : undefined;
    const log = !mqttTap && admin.log ? await BrokerLog.at(admin.log) : undefined;
    const answers = await dynsec(admin, [
      { command: "createRole", rolename: name, acls: mqttAcls(grant, identity.run, identity.agent) },
      {
        command: "createClient",
        username: name,
        password: identity.password,
        clientid: name,
        roles: [{ rolename: name }],
      },
      ...(mqttTap ? [{ command: "getDefaultACLAccess" }] : []),
    ]);
    if (mqttTap) mqttTap.defaultPublish(defaultAllows(answers[2], "publishClientSend"));
    return {
      env: {
        [envName]: `mqtt://${encodeURIComponent(name)}:${encodeURIComponent(identity.password)}@${endpoint.host}:${endpoint.port}`,
        MQTT_CLIENT_ID: name,
      },
      ...(mqttTap
        ? { denied: async () => mqttTap.denied() }
        : log
          ? { denied: logDenials(log, ` ${name} `, (lines) => deniedFromMosquittoLog(lines, name)) }
          : {}),
      revoke: () =>
        dynsec(admin, [
          { command: "deleteClient", username: name },
          { command: "deleteRole", rolename: name },
        ]).then(() => {}),
    };
  },

  async sweep(admin, now) {
    const [clients, roles] = (await dynsec(admin, [{ command: "listClients" }, { command: "listRoles" }])) as [
      { clients?: string[] },
      { roles?: string[] },
    ];
    const stale = (clients.clients ?? []).filter((n) => (identityExpiry(n) ?? Infinity) < now);
    const staleRoles = (roles.roles ?? []).filter((n) => (identityExpiry(n) ?? Infinity) < now);
    if (stale.length || staleRoles.length)
      await dynsec(admin, [
        ...stale.map((username) => ({ command: "deleteClient", username })),
        ...staleRoles.map((rolename) => ({ command: "deleteRole", rolename })),
      ]);
    return stale;
  },
};

/** Whether dynamic security's default (getDefaultACLAccess's answer) allows `acltype`; denied when it does not say. */
function defaultAllows(answer: unknown, acltype: string): boolean {
  const acls = (answer as { acls?: { acltype?: string; allow?: boolean }[] } | undefined)?.acls ?? [];
  return acls.find((a) => a.acltype === acltype)?.allow === true;
}
