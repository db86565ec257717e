/**
 * HTTPS services by name, as written in a policy's network.https: `api.example.com` (port 443),
 * `api.example.com:8443`, or `*.blob.example.com` (one label of wildcard at the left, under at
 * least two). Here: the syntax and what a name may be; the gate's egress proxy decides connections
 * with the same rules (gate/https/names.ts).
 */
import { isIP } from "node:net";

export interface HttpsService {
  /** As written in the policy (the host field of an entry written as a mapping). */
  raw: string;
  /** Lower case; `*.` and a name for a wildcard. */
  host: string;
  port: number;
  wildcard: boolean;
  /**
   * The gate terminates TLS for this service (with `headers` or `inspect`): it checks each request's
   * Host / :authority against the name, verifies the service's own certificate and adds `headers`.
   */
  terminate: boolean;
  /** Headers the gate adds to every request, values with `${VAR}` references to the caller's environment. */
  headers: { name: string; value: string }[];
}

/** `${NAME}` references in a header value. */
const VARIABLE = /\$\{([^}]*)\}/g;

/** The variables a header value names (`${MODEL_API_KEY}`). */
export function headerVariables(value: string): string[] {
  return [...value.matchAll(VARIABLE)].map((m) => m[1]!);
}

/** A header value with its `${VAR}` references filled in from `env`; the names it could not find. */
export function fillHeader(
  value: string,
  env: Record<string, string | undefined>,
): { value: string; missing: string[] } {
  const missing: string[] = [];
  const filled = value.replace(VARIABLE, (_, name: string) => {
    const v = env[name];
    if (v === undefined) missing.push(name);
    return v ?? "";
  });
  return { value: filled, missing };
}

/** Headers the gate must not set: the request's own framing and routing. */
const RESERVED_HEADERS = new Set([
  "host",
  "connection",
  "content-length",
  "transfer-encoding",
  "te",
  "upgrade",
  "keep-alive",
  "proxy-connection",
  "trailer",
]);

/** Why a header the policy adds is not allowed, with the fix; undefined when it is. */
export function headerProblem(name: string, value: string): { message: string; fix: string } | undefined {
  if (!/^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/.test(name))
    return {
      message: `"${name}" is not an HTTP header name`,
      fix: "use letters, digits and hyphens, e.g. Authorization",
    };
  if (RESERVED_HEADERS.has(name.toLowerCase()) || name.startsWith(":"))
    return { message: `${name} is the request's own; the gate does not set it`, fix: `remove ${name}` };
  if (/[\r\n\0]/.test(value)) return { message: `the value of ${name} has a line break`, fix: "write it on one line" };
  for (const variable of headerVariables(value)) {
    if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(variable))
      return {
        message: `\${${variable}} in ${name} is not a variable name`,
        // biome-ignore lint/suspicious/noTemplateCurlyInString: a policy's ${VAR} reference, filled in by the gate
        fix: "write ${NAME} with letters, digits and _",
      };
    if (variable.startsWith("AIRLOCK_"))
      return {
        message: `\${${variable}} in ${name}: AIRLOCK_ variables are airlock's own`,
        fix: "use a variable of your own",
      };
  }
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

/** Why `raw` cannot be an entry of network.https, with the fix; undefined when it can. */
export function httpsServiceProblem(raw: string): { message: string; fix: string } | undefined {
  const text = raw.trim();
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(text)) {
    const guess = text.replace(/^[a-z][a-z0-9+.-]*:\/\//i, "").replace(/[/?#].*$/, "");
    return {
      message: `"${text}" is a URL, not a host name`,
      fix: `write only the host (and :port if not 443): ${guess}`,
    };
  }
  const colon = text.lastIndexOf(":");
  const bracketed = text.startsWith("[");
  const host = colon > 0 && !bracketed && text.indexOf(":") === colon ? text.slice(0, colon) : text;
  if (host !== text) {
    const portText = text.slice(colon + 1);
    const port = Number(portText);
    if (!/^\d+$/.test(portText) || port < 1 || port > 65535)
      return {
        message: `port "${portText}" in "${text}" is not a TCP port`,
        fix: "use a port from 1 to 65535, or leave it out for 443",
      };
  }
  const problem = listedNameProblem(host.replace(/\.$/, ""));
  if (problem) {
    const fix = /IP address/.test(problem)
      ? `list the service's name, or move ${text} to network.allowedEndpoints (checked by address only)`
      : /too wide/.test(problem)
        ? "list the names under it, or a wildcard one label under a name you trust (*.blob.example.com)"
        : "write a host name such as api.example.com, or *.example.com for one label under it";
    return { message: `"${host}" ${problem}`, fix };
  }
  return undefined;
}

/** Parse an entry already checked by httpsServiceProblem(). */
export function parseHttpsService(raw: string): HttpsService {
  const problem = httpsServiceProblem(raw);
  if (problem) throw new TypeError(`${problem.message} (${problem.fix})`);
  const text = raw.trim();
  const colon = text.lastIndexOf(":");
  const host = (colon > 0 ? text.slice(0, colon) : text).toLowerCase().replace(/\.$/, "");
  const port = colon > 0 ? Number(text.slice(colon + 1)) : 443;
  return { raw: text, host, port, wildcard: host.startsWith("*."), terminate: false, headers: [] };
}

/** An entry of network.https as written: a name, or a mapping with the host and what the gate does. */
export type HttpsEntry =
  | string
  | { host: string; headers?: Record<string, string> | undefined; inspect?: boolean | undefined };

/** Parse an entry already checked by the schema. */
export function parseHttpsEntry(entry: HttpsEntry): HttpsService {
  if (typeof entry === "string") return parseHttpsService(entry);
  const headers = Object.entries(entry.headers ?? {}).map(([name, value]) => ({ name, value }));
  return { ...parseHttpsService(entry.host), terminate: headers.length > 0 || entry.inspect === true, headers };
}
