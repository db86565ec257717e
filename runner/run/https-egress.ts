/**
 * The egress proxy of one run's HTTPS services by name, as a backend opens it beside its loopback
 * forwarders: an SNI-checking proxy per port the policy lists (sni-proxy.ts), a DNS answerer for the
 * listed names (dns-answerer.ts), and the record of what they refused, for the run's denied report.
 *
 * Inside the sandbox every listed name is the agent's own 127.0.0.1 (/etc/hosts for exact names, the
 * DNS answerer for a wildcard's), and the gate's rules take 127.0.0.1:PORT to this proxy's port. The
 * record is bounded: at most MAX_DENIAL_ENTRIES distinct refusals are kept, with their counts; a
 * flood of new names (DNS used to carry data out, say) adds to one overflow entry and nothing else.
 */
import type { DeniedConnection } from "../gate/denied.js";
import { hostResolver, type HttpsRoute, type Resolver } from "../gate/plan.js";
import type { HttpsService } from "../policy/https-service.js";
import { DnsAnswerer } from "./dns-answerer.js";
import type { Authority } from "./egress-ca.js";
import { HttpsTerminator } from "./https-terminator.js";
import { SniProxy, type HttpsDenial } from "./sni-proxy.js";

/** Distinct refusals kept per run; the rest are counted in one entry. */
export const MAX_DENIAL_ENTRIES = 200;
/** Where listed names point inside the sandbox: the agent's own loopback, DNATed per port. */
export const LISTED_NAME_ADDRESS = "127.0.0.1";

export interface HttpsEgressOptions {
  resolver?: Resolver;
  /** Where upstream connections come from (the bridge gateway: a service on the host sees no loopback client). */
  localAddress?: string;
  /** For services the policy has the gate terminate (headers, inspect). */
  terminating?: TerminatingInput;
}

/** What terminating mode needs from the run. */
export interface TerminatingInput {
  /** The runner's CA, as this run uses it. */
  authority: Authority;
  /** The values of the variables the policy's headers name. */
  secrets: Record<string, string>;
  /** CAs trusted for the services' own certificates, instead of Node's. */
  upstreamCa?: string;
}

export class HttpsEgress {
  private constructor(
    private readonly proxies: SniProxy<HttpsService>[],
    private readonly terminators: HttpsTerminator[],
    private readonly dns: DnsAnswerer,
    private readonly record: DenialRecord,
  ) {}

  /** Listen on `address` (the bridge gateway, the node's address): one proxy per route, in order, and the DNS answerer. */
  static async open(address: string, routes: HttpsRoute[], options: HttpsEgressOptions = {}): Promise<HttpsEgress> {
    const record = new DenialRecord();
    const proxies: SniProxy<HttpsService>[] = [];
    const terminators: HttpsTerminator[] = [];
    let dns: DnsAnswerer | undefined;
    try {
      for (const route of routes) {
        const terminator = route.services.some((s) => s.terminate)
          ? new HttpsTerminator({
              port: route.port,
              services: route.services,
              ...terminatingFor(options),
              resolver: options.resolver ?? hostResolver,
              onDenied: (d) => record.https(d),
              ...(options.localAddress ? { localAddress: options.localAddress } : {}),
            })
          : undefined;
        if (terminator) terminators.push(terminator);
        proxies.push(
          await SniProxy.listen(address, {
            port: route.port,
            services: route.services,
            onDenied: (d) => record.https(d),
            ...(terminator ? { terminator } : {}),
            ...(options.resolver ? { resolver: options.resolver } : {}),
            ...(options.localAddress ? { localAddress: options.localAddress } : {}),
          }),
        );
      }
      dns = await DnsAnswerer.listen(address, {
        listed: routes.flatMap((r) => r.services),
        answer: LISTED_NAME_ADDRESS,
        onRefused: (name) => record.dns(name),
      });
    } catch (err) {
      await Promise.all([...proxies.map((p) => p.close()), ...terminators.map((t) => t.close())]);
      throw err;
    }
    return new HttpsEgress(proxies, terminators, dns, record);
  }

  /** The proxies' ports (one per route) and the DNS answerer's, for the gate's rules. */
  get ports(): { ports: number[]; dns: number } {
    return { ports: this.proxies.map((p) => p.port), dns: this.dns.port };
  }

  /** Serve this agent address. */
  allow(ip: string): void {
    for (const p of this.proxies) p.allow(ip);
    this.dns.allow(ip);
  }

  /** What was refused so far, most frequent first. */
  denials(): DeniedConnection[] {
    return this.record.entries();
  }

  /** Idempotent. */
  async close(): Promise<void> {
    await Promise.all([
      ...this.proxies.map((p) => p.close()),
      ...this.terminators.map((t) => t.close()),
      this.dns.close(),
    ]);
  }
}

function terminatingFor(options: HttpsEgressOptions): TerminatingInput {
  if (!options.terminating)
    throw new Error("a service the gate terminates needs the runner's CA and the header values");
  return options.terminating;
}

/** The policy line that allows a refused connection, or why none can. */
export function fixFor(denial: Pick<HttpsDenial, "name" | "port" | "reason">): string {
  const listed = `${denial.name}${denial.port === 443 ? "" : `:${denial.port}`}`;
  switch (denial.reason) {
    case "not-listed":
      return `add ${listed} to network.https`;
    case "no-sni":
      return "none can: the client must send the service's name (SNI); use a host name in the URL, not an address";
    case "ip-literal":
    case "not-a-name":
      return "none can: HTTPS is allowed by name; use the service's host name in the URL (an address goes in network.allowedEndpoints)";
    case "ech":
      return "none can: an Encrypted Client Hello hides the name it asks for; turn ECH off in the client";
    case "plain-http":
      return `none can: port ${denial.port} carries HTTPS to listed names only; use https://`;
    case "upstream":
      return "none needed: the name is listed, but the service could not be reached from the host";
    case "upstream-certificate":
      return "none can: the service's certificate does not verify for its name (the request was not sent); a corporate CA goes in the runner's NODE_EXTRA_CA_CERTS";
    case "host-mismatch":
      return "none can: a request must name the host its TLS connection was opened for (open a connection to the other name, and list it)";
    default:
      return "none can: the connection was not a TLS client hello within the time limit";
  }
}

/** Refusals counted by what they were; bounded. */
class DenialRecord {
  private readonly byKey = new Map<string, DeniedConnection>();
  private overflow = 0;

  https(d: HttpsDenial): void {
    this.add(`https ${d.name ?? ""}:${d.port} ${d.reason}`, () => ({
      destination: `${d.name ?? "(no name)"}:${d.port}`,
      protocol: "https",
      count: 0,
      reason: d.reason,
      fix: fixFor(d),
    }));
  }

  dns(name: string): void {
    this.add(`dns ${name}`, () => ({
      destination: name,
      protocol: "dns",
      count: 0,
      reason: "not-listed",
      fix: `add ${name} to network.https if the agent calls it over HTTPS (no other name resolves in the sandbox)`,
    }));
  }

  private add(key: string, create: () => DeniedConnection): void {
    let entry = this.byKey.get(key);
    if (!entry) {
      if (this.byKey.size >= MAX_DENIAL_ENTRIES) {
        this.overflow++;
        return;
      }
      entry = create();
      this.byKey.set(key, entry);
    }
    entry.count++;
  }

  entries(): DeniedConnection[] {
    const list = [...this.byKey.values()].map((e) => ({ ...e }));
    if (this.overflow)
      list.push({
        destination: `${this.overflow} more refusals of other names`,
        protocol: "dns",
        count: this.overflow,
        countAtLeast: true,
        reason: "not-listed",
        fix: `only the first ${MAX_DENIAL_ENTRIES} distinct names are recorded`,
      });
    return list.sort((a, b) => b.count - a.count || a.destination.localeCompare(b.destination));
  }
}
