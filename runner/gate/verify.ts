/**
 * The runner's own check that a sandbox's rules are in force, made from outside the container
 * before the agent may start: the kernel's copy of the rules is read back and compared, rule by
 * rule, with what the runner sent. Whatever ran inside the container (the init of an airlock image,
 * or a gate container) does not get the last word on whether the gate is up.
 *
 * A root runner reads them with the host's iptables-save under nsenter (a few ms). Other runners
 * start a short-lived verifier container from airlock's gate image in the same namespace.
 */
import type Docker from "dockerode";
import { GateError } from "../errors.js";
import { canInspectFromHost, saveRules, type Backend } from "./netns.js";

export interface ExpectedRules {
  v4: string;
  v6: string;
}

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
  return kept.map((l, i) => [l, i] as const).sort((a, b) => table(a[0]).localeCompare(table(b[0])) || a[1] - b[1]).map(([l]) => l);
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
    // `-m tcp` is implied by `-p tcp` with port options; iptables-save adds it.
    if (t === "-m" && args[0] === "tcp") continue;
    const value = args.map((a) => canonicalValue(t, a.replace(/^"|"$/g, ""))).join(" ");
    groups.push(`${negate}${t}${value ? ` ${value}` : ""}`);
  }
  return `${chainOp} ${groups.sort().join(" ")}`;
}

function canonicalValue(option: string, value: string): string {
  if (/^(-s|-d|--source|--destination|--ctorigdst|--ctorigsrc|--ctrepldst|--ctreplsrc)$/.test(option)) return value.replace(/\/32$/, "");
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
  return [missing.length ? `missing: ${show(missing)}` : "", extra.length ? `unexpected: ${show(extra)}` : ""].filter(Boolean).join("; ");
}

export interface VerifyTarget {
  /** A process in the namespace (the container's init), seen from the host. */
  pid: number;
  /** The container that owns the namespace (for the verifier container). */
  containerId: string;
  /** Backend the gate says it used; the other one is read too if this one does not match. */
  backend?: Backend;
}

export interface Verifier {
  verify(target: VerifyTarget, expected: ExpectedRules): Promise<void>;
}

/** Read back with the host's tools (root runner). */
export const hostVerifier: Verifier = {
  async verify(target, expected) {
    const order: Backend[] = target.backend === "nft" ? ["nft", "legacy"] : ["legacy", "nft"];
    const problems: string[] = [];
    for (const backend of order) {
      const actual = await saveRules(target.pid, backend);
      const problem = compareRulesets(expected.v4, actual.v4) ?? compareRulesets(expected.v6, actual.v6);
      if (!problem) return;
      problems.push(`${backend}: ${problem}`);
    }
    throw new GateError(`the egress rules in the agent's network namespace are not the ones airlock sent (${problems.join(" | ")}); the agent was not started`, "run `airlock doctor`; if it persists, report it: something changed the rules before the agent started");
  },
};

/** Read back from a verifier container of airlock's gate image, joined to the namespace (runner not root). */
export function containerVerifier(docker: Docker, gateImage: string, labels: Record<string, string>): Verifier {
  return {
    async verify(target, expected) {
      const script = "for b in legacy nft; do echo \"@@ $b v4\"; iptables-$b-save 2>/dev/null; echo \"@@ $b v6\"; ip6tables-$b-save 2>/dev/null; done";
      const container = await docker.createContainer({
        Image: gateImage,
        Entrypoint: ["sh", "-c", script],
        Labels: labels,
        HostConfig: {
          NetworkMode: `container:${target.containerId}`,
          CapDrop: ["ALL"],
          CapAdd: ["NET_ADMIN", "NET_RAW"],
          SecurityOpt: ["no-new-privileges:true"],
          ReadonlyRootfs: true,
          Tmpfs: { "/run": "rw,size=1m", "/tmp": "rw,size=1m" },
          Memory: 32 * 1024 * 1024,
          PidsLimit: 16,
        } as Docker.HostConfig,
      });
      try {
        await container.start();
        await container.wait();
        const logs = demuxLogs(await container.logs({ stdout: true, stderr: false, follow: false }));
        const sections = new Map<string, string>();
        for (const part of logs.split(/^@@ /m).slice(1)) {
          const nl = part.indexOf("\n");
          sections.set(part.slice(0, nl).trim(), part.slice(nl + 1));
        }
        const problems: string[] = [];
        for (const backend of ["legacy", "nft"] as const) {
          const problem = compareRulesets(expected.v4, sections.get(`${backend} v4`) ?? "") ?? compareRulesets(expected.v6, sections.get(`${backend} v6`) ?? "");
          if (!problem) return;
          problems.push(`${backend}: ${problem}`);
        }
        throw new GateError(`the egress rules in the agent's network namespace are not the ones airlock sent (${problems.join(" | ")}); the agent was not started`, "run `airlock doctor`; if it persists, report it");
      } finally {
        await container.remove({ force: true }).catch(() => {});
      }
    },
  };
}

export function defaultVerifier(docker: Docker, gateImage: string, labels: Record<string, string>): Verifier {
  return canInspectFromHost() ? hostVerifier : containerVerifier(docker, gateImage, labels);
}

/** A non-TTY container's log buffer is framed: [stream, 0, 0, 0, size (4 bytes)] then the payload. */
function demuxLogs(buffer: Buffer): string {
  const parts: Buffer[] = [];
  for (let at = 0; at + 8 <= buffer.length; ) {
    const size = buffer.readUInt32BE(at + 4);
    parts.push(buffer.subarray(at + 8, at + 8 + size));
    at += 8 + size;
  }
  return Buffer.concat(parts).toString("utf8");
}
