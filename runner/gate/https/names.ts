/**
 * HTTPS services by name: whether the name a connection asks for (its SNI) is one the policy lists
 * (which names it may list is the policy's: policy/https-service.ts).
 * Pure; the egress proxy asks `decideByName` for every connection before anything goes upstream.
 */
import { isIP } from "node:net";
import { hostNameProblem } from "../../policy/https-service.js";
import type { ClientHello } from "./client-hello.js";

/** Whether `name` (lower case) is `pattern`, or one label under a `*.` pattern. */
export function nameMatches(name: string, pattern: string): boolean {
  const p = pattern.toLowerCase();
  if (!p.startsWith("*.")) return name === p;
  const suffix = p.slice(1);
  if (!name.endsWith(suffix)) return false;
  const label = name.slice(0, name.length - suffix.length);
  return label.length > 0 && !label.includes(".");
}

export type NameRefusal = "no-sni" | "ip-literal" | "ech" | "not-listed" | "not-a-name";

export type NameDecision<S> = { allow: S; name: string } | { refuse: NameRefusal; name?: string; detail: string };

/**
 * The service a ClientHello may reach: the first of `services` whose name its SNI matches. No SNI,
 * an IP address as SNI, an Encrypted Client Hello (its outer name is not the one it really asks
 * for) and any name not listed are refused, each with a reason the run's report can name.
 */
export function decideByName<S extends { host: string }>(hello: ClientHello, services: S[]): NameDecision<S> {
  if (hello.ech)
    return {
      refuse: "ech",
      ...(hello.sni ? { name: hello.sni } : {}),
      detail: "an Encrypted Client Hello hides the name it asks for",
    };
  const name = hello.sni;
  if (name === undefined) return { refuse: "no-sni", detail: "the connection names no server (no SNI)" };
  if (isIP(name.replace(/^\[|\]$/g, "")))
    return { refuse: "ip-literal", name, detail: "an IP address instead of a name" };
  const problem = hostNameProblem(name);
  if (problem) return { refuse: "not-a-name", name, detail: `the name it asks for ${problem}` };
  const service = services.find((s) => nameMatches(name, s.host));
  if (!service) return { refuse: "not-listed", name, detail: `${name} is not a listed HTTPS service` };
  return { allow: service, name };
}
