/**
 * Comparing rule sets: what the runner sent a gate against what the kernel holds, as read back with
 * iptables-save. Pure text; each backend reads the kernel's copy its own way (the Docker backend's
 * verifier, the Kubernetes Pod gate) and asks this whether they are the same.
 */
import type { RuleSet } from "./rules.js";

/** What the runner sent a gate. */
export type ExpectedRules = RuleSet;

/**
 * iptables-save writes rules in its own canonical form (`-d 1.2.3.4/32 -p tcp -m tcp --dport 1`,
 * flags reordered, /32 added or dropped depending on the match). Normalise both sides to a list of
 * tables → chains (policy) → rules (a sorted list of option groups), so equal rule sets compare equal.
 */
export function normalizeRuleset(text: string): string[] {
  const out: string[] = [];
  let current = "";
  for (const raw of text.split("\n")) {
    const line = raw.trim();
    if (!line || line.startsWith("#")) continue;
    if (line.startsWith("*")) {
      current = line.slice(1);
      continue;
    }
    if (line === "COMMIT") continue;
    if (line.startsWith(":")) {
      const [chain, policy] = line.slice(1).split(/\s+/);
      out.push(`${current} :${chain} ${policy}`);
      continue;
    }
    out.push(`${current} ${normalizeRule(line)}`);
  }
  // Only the filter table's chain policies decide anything (nat, mangle and raw chains always ACCEPT).
  // Tables are independent of each other: compare them in name order, each rule in its own order.
  const kept = out.filter((l) => l.startsWith("filter ") || !/^\S+ :\S+ ACCEPT$/.test(l));
  const table = (l: string) => l.slice(0, l.indexOf(" "));
  return kept
    .map((l, i) => [l, i] as const)
    .sort((a, b) => table(a[0]).localeCompare(table(b[0])) || a[1] - b[1])
    .map(([l]) => l);
}

function normalizeRule(rule: string): string {
  const tokens = rule.match(/"[^"]*"|\S+/g) ?? [];
  const groups: string[] = [];
  let chainOp = "";
  for (let i = 0; i < tokens.length; i++) {
    let t = tokens[i]!;
    let negate = "";
    if (t === "!") {
      negate = "! ";
      t = tokens[++i]!;
    }
    const args: string[] = [];
    while (i + 1 < tokens.length && !tokens[i + 1]!.startsWith("-") && tokens[i + 1] !== "!") args.push(tokens[++i]!);
    if (t === "-A") {
      chainOp = `-A ${args.join(" ")}`;
      continue;
    }
    // `-m tcp` (`-m udp`) is implied by `-p tcp` (udp) with port options; iptables-save adds it.
    if (t === "-m" && (args[0] === "tcp" || args[0] === "udp")) continue;
    const value = args.map((a) => canonicalValue(t, a.replace(/^"|"$/g, ""))).join(" ");
    groups.push(`${negate}${t}${value ? ` ${value}` : ""}`);
  }
  return `${chainOp} ${groups.sort().join(" ")}`;
}

function canonicalValue(option: string, value: string): string {
  if (/^(-s|-d|--source|--destination|--ctorigdst|--ctorigsrc|--ctrepldst|--ctreplsrc)$/.test(option))
    return value.replace(/\/32$/, "");
  if (option === "--ctstate" || option === "--state") return value.split(",").sort().join(",");
  if (option === "--tcp-flags") return value.split(",").sort().join(",");
  return value;
}

/** Every rule the runner sent is in force, and no other rule is (the chains' policies included). */
export function compareRulesets(expected: string, actual: string): string | undefined {
  const want = normalizeRuleset(expected);
  const got = normalizeRuleset(actual);
  const missing = want.filter((l) => !got.includes(l));
  const extra = got.filter((l) => !want.includes(l));
  if (!missing.length && !extra.length) {
    // Same rules in the same order (order decides which rule matches first).
    const order = want.join("\n") === got.join("\n");
    return order ? undefined : "the rules are in force in another order";
  }
  const show = (ls: string[]) => ls.slice(0, 3).join("; ") + (ls.length > 3 ? `; … (${ls.length})` : "");
  return [missing.length ? `missing: ${show(missing)}` : "", extra.length ? `unexpected: ${show(extra)}` : ""]
    .filter(Boolean)
    .join("; ");
}
