/**
 * Every refusal of a run in one list, whatever layer refused it: the gate's L4 tables, the HTTPS
 * egress proxy, and each broker that keeps a record (Redis' ACL LOG; RabbitMQ's, Kafka's and
 * NATS's logs). One entry says when, which layer and kind, what the agent tried (action) on what
 * (resource), how often, a stable rule id a script can match on, and the policy line that would
 * allow it — or, marked `never`, why no policy line can. The result carries the list, and the
 * runner writes it as JSON Lines beside the result (`out/<name>.denials.jsonl`).
 */
import { writeFile } from "node:fs/promises";
import { basename, dirname, join } from "node:path";
import type { BusDenial } from "../bus/kind.js";
import type { DeniedConnection } from "../gate/denied.js";
import type { Refusal } from "../../agent-runtime/denials.js";

/** The entry's shape is the runtimes' contract too (ctx.denials() returns the same): defined there. */
export type { Refusal } from "../../agent-runtime/denials.js";

/** What the gate's tables and the egress proxy refused, as refusals read at `readAt`. */
export function refusalsFromGate(denied: DeniedConnection[], readAt: string): Refusal[] {
  return denied.map((d) => {
    const counted = { count: d.count, ...(d.countAtLeast ? { countAtLeast: true as const } : {}) };
    if (d.protocol === "https" || d.protocol === "dns") {
      const never = (d.fix ?? "").startsWith("none");
      return {
        time: readAt,
        layer: "https",
        kind: d.protocol,
        action: d.protocol === "dns" ? "resolve" : "connect",
        resource: d.destination,
        resourceType: "name",
        ...counted,
        rule: `${d.protocol}.${d.reason ?? "refused"}`,
        fix: d.fix ?? `add ${d.destination} to network.https`,
        ...(never ? { never: true as const } : {}),
      };
    }
    if (d.loopback) {
      const port = d.destination.slice(d.destination.lastIndexOf(":") + 1);
      return {
        time: readAt,
        layer: "network",
        kind: d.protocol,
        action: "connect",
        resource: `localhost:${port}`,
        resourceType: "endpoint",
        ...counted,
        rule: "network.loopback",
        fix: `add localhost:${port} to network.allowedEndpoints (a service on the host), if the agent needs it`,
      };
    }
    return {
      time: readAt,
      layer: "network",
      kind: d.protocol,
      action: "connect",
      resource: d.destination,
      resourceType: "endpoint",
      ...counted,
      rule: `network.${d.protocol}`,
      fix:
        d.protocol === "tcp"
          ? `add ${d.destination} to network.allowedEndpoints, if the agent needs it`
          : d.protocol === "udp" && d.destination.endsWith(":53")
            ? "none: DNS goes only to the gate; list HTTPS services by name in network.https"
            : `none: only TCP to the endpoints in network.allowedEndpoints leaves the sandbox`,
      ...(d.protocol === "tcp" ? {} : { never: true as const }),
    };
  });
}

/** The action a broker's refusal stands for, in the policy's words. */
function busAction(d: BusDenial): string {
  if (d.action) return d.action;
  if (d.what === "channel") return d.command === "publish" ? "publish" : "subscribe";
  if (d.what === "command") return "command";
  return d.command ?? "use";
}

/** What the brokers refused, as refusals (read at `readAt` where the broker gives no time). */
export function refusalsFromBrokers(denials: BusDenial[], readAt: string): Refusal[] {
  return denials.map((d) => {
    const action = busAction(d);
    return {
      time: d.time ?? readAt,
      layer: "broker",
      kind: d.broker,
      action,
      resource: d.name,
      resourceType: d.what,
      count: d.count,
      rule: `${d.broker}.${d.what}.${action}`,
      fix: d.fix,
      ...(d.never ? { never: true as const } : {}),
      ...(d.allow ? { allow: d.allow } : {}),
    };
  });
}

/** The run's refusals, earliest first (then most frequent). */
export function allRefusals(denied: DeniedConnection[], busDenied: BusDenial[], readAt: string): Refusal[] {
  return [...refusalsFromGate(denied, readAt), ...refusalsFromBrokers(busDenied, readAt)].sort(
    (a, b) => a.time.localeCompare(b.time) || b.count - a.count || a.rule.localeCompare(b.rule),
  );
}

/** "rabbitmq publish exchange results", "redis command config|get", "tcp connect 10.0.0.9:443". */
/** What makes two refusals the same one, whatever their counts and times: its rule and what it refused. */
export function refusalKey(r: Pick<Refusal, "rule" | "resource">): string {
  return `${r.rule} ${r.resource}`;
}

export function describeRefusal(r: Pick<Refusal, "kind" | "action" | "resourceType" | "resource">): string {
  const type =
    r.resourceType === r.action || r.resourceType === "endpoint" || r.resourceType === "name"
      ? ""
      : `${r.resourceType} `;
  return `${r.kind} ${r.action} ${type}${r.resource}`;
}

/** One line per refusal, for a failure's reason: what was refused and what would allow it. */
export function refusalSummary(refusals: Refusal[], max = 3): string {
  const shown = refusals.slice(0, max).map((r) => `${describeRefusal(r)} (${r.never ? r.fix : `fix: ${r.fix}`})`);
  const more = refusals.length > max ? `; and ${refusals.length - max} more (see the result's refusals)` : "";
  return `${shown.join("; ")}${more}`;
}

/** `out/hello` → `out/hello.denials.jsonl`: beside the result, where the agent cannot write. */
export function refusalsFileFor(outputDir: string): string {
  return join(dirname(outputDir), `${basename(outputDir)}.denials.jsonl`);
}

/** The refusals as JSON Lines (an empty file when there were none: the run was read, nothing was refused). */
export async function writeRefusals(outputDir: string, refusals: Refusal[]): Promise<string> {
  const file = refusalsFileFor(outputDir);
  await writeFile(file, toJsonLines(refusals));
  return file;
}

/** One JSON object per line: the file beside the result and the live list in the sandbox. */
export function toJsonLines(refusals: Refusal[]): string {
  return refusals.map((r) => `${JSON.stringify(r)}\n`).join("");
}
