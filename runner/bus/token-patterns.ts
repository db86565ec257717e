/**
 * Name patterns for brokers whose names are made of tokens (NATS subjects split on ".", MQTT topics
 * on "/"). A token may be `*`: in the middle it stands for exactly one token (NATS `*`, MQTT `+`), at
 * the end for the rest of the name (NATS `>`, MQTT `#`). With {run} and {agent} that says, for
 * example, "publish to anyone's inbox, as myself" (`inbox.{run}.*.{agent}`) and "read only my own"
 * (`inbox.{run}.{agent}.*`), which the broker then enforces. The brokers' own wildcards may not be
 * written, and their system names ($SYS, $CONTROL, ...) and NATS inboxes are never granted.
 */
import { z } from "zod";

export function tokenPatternProblem(
  raw: string,
  separator: "." | "/",
  example: string,
): { message: string; fix: string } | undefined {
  const tokens = raw.split(separator);
  if (raw === "" || tokens.some((t) => t === ""))
    return { message: `"${raw}" has an empty token`, fix: `write names like ${example}` };
  if (tokens.every((t) => t === "*"))
    return {
      message: `"${raw}" grants every name on the broker`,
      fix: `name the prefix the agent needs, e.g. ${example}`,
    };
  const bad = tokens.find((t) => t !== "*" && t.includes("*"));
  if (bad !== undefined)
    return {
      message: `"${raw}": * stands for a whole token, not part of one ("${bad}")`,
      fix: `write ${separator}*${separator} for one token or end with ${separator}* for the rest, e.g. ${example}`,
    };
  if ((separator === "/" ? /[+#]/ : /[>]/).test(raw))
    return { message: `"${raw}" uses the broker's own wildcards`, fix: `write * for a token instead, e.g. ${example}` };
  if (/\s/.test(raw)) return { message: `"${raw}" has a space`, fix: `write names like ${example}` };
  if (/\{(?!(run|agent)\})/.test(raw))
    return {
      message: `"${raw}" has a placeholder other than {run} and {agent}`,
      fix: "the placeholders are {run} (the run's id) and {agent} (the agent's name)",
    };
  if (tokens[0]!.startsWith("$"))
    return {
      message: `"${raw}" is one of the broker's system names`,
      fix: "system subjects and topics ($SYS, $CONTROL, ...) are never granted to agents",
    };
  if (tokens[0]!.startsWith("_INBOX"))
    return {
      message: `"${raw}" is an inbox`,
      fix: "each run has its own inbox prefix already (AIRLOCK_NATS_INBOX_PREFIX); grant the subjects it talks on",
    };
  return undefined;
}

/** A list of such patterns, validated with the fix in each error. */
export function tokenPatterns(separator: "." | "/", what: string, example: string) {
  return z
    .array(
      z
        .string()
        .min(1)
        .superRefine((v, ctx) => {
          const p = tokenPatternProblem(v, separator, example);
          if (p) ctx.addIssue({ code: "custom", message: p.message, params: { fix: p.fix } });
        }),
    )
    .describe(what);
}

/** The broker's own spelling: one-token `*` as `single`, a trailing `*` as `rest`. */
export function toTokenWildcards(
  name: string,
  prefix: boolean,
  separator: "." | "/",
  single: string,
  rest: string,
): string {
  const body = name
    .split(separator)
    .map((t) => (t === "*" ? single : t))
    .join(separator);
  return prefix ? `${body}${rest}` : body;
}
