/**
 * `host:port` endpoints as written in a policy's network.allowedEndpoints.
 * host is an IPv4 address, a DNS name (resolved on the host when the agent starts), or
 * localhost / 127.0.0.1, which mean the host machine's loopback.
 */
export type EndpointKind = "loopback" | "ipv4" | "dns";

export interface Endpoint {
  /** As written in the policy. */
  raw: string;
  host: string;
  port: number;
  kind: EndpointKind;
}

const IPV4 = /^(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(\.(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)){3}$/;
const DNS_LABEL = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/i;

/** Why `raw` is not a valid endpoint, with the fix; undefined when it is valid. */
export function endpointProblem(raw: string): { message: string; fix: string } | undefined {
  const text = raw.trim();
  if (text === "") return { message: "endpoint is empty", fix: "write it as host:port, e.g. localhost:6379" };
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(text)) {
    const guess = text
      .replace(/^[a-z][a-z0-9+.-]*:\/\//i, "")
      .replace(/\/.*$/, "")
      .replace(/^.*@/, "");
    return {
      message: `"${text}" is a URL, not host:port`,
      fix: `write only host and port, e.g. ${guess.includes(":") ? guess : `${guess}:PORT`}`,
    };
  }
  if (text.includes("*"))
    return {
      message: `"${text}" has a wildcard; wildcards are not allowed`,
      fix: "list each host:port the agent needs",
    };
  if (text.startsWith("[") || (text.match(/:/g)?.length ?? 0) > 1) {
    return {
      message: `"${text}" is an IPv6 address; the gate allows IPv4 only`,
      fix: "use the broker's IPv4 address or DNS name",
    };
  }
  const colon = text.lastIndexOf(":");
  if (colon < 0) return { message: `"${text}" has no port`, fix: `write it as ${text}:PORT, e.g. ${text}:6379` };
  const host = text.slice(0, colon);
  const portText = text.slice(colon + 1);
  if (host === "") return { message: `"${text}" has no host`, fix: `write it as localhost${text} or HOST${text}` };
  if (!/^\d+$/.test(portText))
    return { message: `port "${portText}" in "${text}" is not a number`, fix: "use a TCP port number from 1 to 65535" };
  const port = Number(portText);
  if (port < 1 || port > 65535)
    return { message: `port ${port} in "${text}" is out of range`, fix: "use a TCP port number from 1 to 65535" };
  if (host === "0.0.0.0")
    return {
      message: `"${text}" names no host (0.0.0.0)`,
      fix: `use localhost:${port} for the host machine, or the broker's address`,
    };
  if (/^[\d.]+$/.test(host)) {
    if (!IPV4.test(host))
      return { message: `"${host}" is not a valid IPv4 address`, fix: "use four numbers from 0 to 255, e.g. 10.0.0.5" };
    return undefined;
  }
  const name = host.endsWith(".") ? host.slice(0, -1) : host;
  if (name.length > 253 || !name.split(".").every((l) => DNS_LABEL.test(l))) {
    return {
      message: `"${host}" is not a valid host name`,
      fix: "use an IPv4 address or a DNS name of letters, digits, dots and hyphens",
    };
  }
  return undefined;
}

/** Parse an endpoint already checked by endpointProblem(). */
export function parseEndpoint(raw: string): Endpoint {
  const problem = endpointProblem(raw);
  if (problem) throw new TypeError(`${problem.message} (${problem.fix})`);
  const text = raw.trim();
  const colon = text.lastIndexOf(":");
  const host = text.slice(0, colon).toLowerCase().replace(/\.$/, "");
  const port = Number(text.slice(colon + 1));
  const kind: EndpointKind =
    host === "localhost" || /^127\./.test(host) ? "loopback" : IPV4.test(host) ? "ipv4" : "dns";
  return { raw: text, host, port, kind };
}

export function isIPv4(text: string): boolean {
  return IPV4.test(text);
}
