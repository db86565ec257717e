/**
 * HTTPS services by name: which names a policy may list (a host name, or one wildcard label at its
 * left: `*.blob.example.com`), and whether the name a connection asks for (its SNI) is one of them.
 * Pure; the egress proxy asks `decideByName` for every connection before anything goes upstream.
 */
import { isIP } from "node:net";
import type { ClientHello } from "./client-hello.js";

/** Why a name cannot be listed, or undefined when it can. */
export function listedNameProblem(pattern: string): string | undefined {
  const name = pattern.toLowerCase();
  if (isIP(name.replace(/^\[|\]$/g, "")))
    return "is an IP address: HTTPS services are listed by name (addresses go in allowedEndpoints)";
  const wildcard = name.startsWith("*.");
  const rest = wildcard ? name.slice(2) : name;
  if (rest.includes("*")) return "has a wildcard that is not one whole label at the left (write *.example.com)";
  const problem = hostNameProblem(rest);
  if (problem) return problem;
  // One label of wildcard under at least two: *.example.com, not *.com.
  if (wildcard && rest.split(".").length < 2)
    return "is a wildcard too wide: it must stand under at least two labels (*.example.com)";
  return undefined;
}

/** Why `name` is not a DNS host name (letters, digits, hyphens; labels of 1–63; 253 in all), or undefined. */
export function hostNameProblem(name: string): string | undefined {
  if (name.length === 0 || name.length > 253) return "is not a host name (1 to 253 characters)";
  const labels = name.split(".");
  for (const label of labels) {
    if (!/^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$/.test(label))
      return `is not a host name (label "${label}": letters, digits and inner hyphens, 1 to 63 characters)`;
  }
  if (/^[0-9]+$/.test(labels[labels.length - 1]!)) return "is not a host name (its last label is a number)";
  return undefined;
}

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
