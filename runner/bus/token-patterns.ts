/**
 * Name patterns for brokers whose wildcards work per token (NATS subjects split on ".", MQTT topics
 * on "/"): a prefix must end at a separator (`jobs.{run}.*`, `rooms/{run}/*`), the broker's own
 * wildcards may not appear, and the brokers' system names ($SYS, $CONTROL, ...) are never granted.
 */
import { z } from "zod";
import { namePattern } from "./patterns.js";

export function tokenPatternProblem(raw: string, separator: "." | "/", example: string): { message: string; fix: string } | undefined {
  const body = raw.endsWith("*") ? raw.slice(0, -1) : raw;
  if (raw.endsWith("*") && body !== "" && !body.endsWith(separator)) return { message: `"${raw}": a prefix must end with "${separator}*"`, fix: `the broker matches whole tokens: write ${body.replace(/[./]?$/, "")}${separator}*` };
  if (separator === "/" ? /[+#]/.test(body) : /[>*]/.test(body)) return { message: `"${raw}" uses the broker's own wildcards`, fix: `use an exact name or a prefix ending in ${separator}*, e.g. ${example}` };
  if (body.startsWith("$")) return { message: `"${raw}" is one of the broker's system names`, fix: "system subjects and topics ($SYS, $CONTROL, ...) are never granted to agents" };
  if (body.startsWith("_INBOX")) return { message: `"${raw}" is an inbox`, fix: "each run has its own inbox prefix already (AIRLOCK_NATS_INBOX_PREFIX); grant the subjects it talks on" };
  return undefined;
}

/** A list of such patterns, validated with the fix in each error. */
export function tokenPatterns(separator: "." | "/", what: string, example: string) {
  return z.array(
    namePattern.superRefine((v, ctx) => {
      const p = tokenPatternProblem(v, separator, example);
      if (p) ctx.addIssue({ code: "custom", message: p.message, params: { fix: p.fix } });
    }),
  ).describe(what);
}
