/**
 * `airlock learn`: the tightest bus rights an agent needs, learnt from what its brokers refuse. The
 * agent runs under its own policy with its bus lists emptied (its network exactly as the policy
 * says: learning never widens it), and every broker refusal that a policy line could allow is added
 * — named exactly, with the run's and the agent's tokens written back as {run} and {agent} — before
 * the next run, until a run has nothing left to learn. What no line may allow (CONFIG, $SYS, another
 * run's inbox) and what the network refused are reported, never added. The refusals come from the
 * one record (run/refusals.ts): Redis, RabbitMQ, Kafka and NATS from the brokers, MQTT off the
 * agent's connections (bus/mqtt-tap.ts).
 */
import { randomBytes } from "node:crypto";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { basename, dirname, isAbsolute, join, resolve } from "node:path";
import { parse, stringify } from "yaml";
import { busAgentToken } from "../bus/patterns.js";
import { definePolicy, type PolicyInput } from "../policy/index.js";
import type { AgentResult } from "../run/result.js";
import { refusalKey, type Refusal } from "../run/refusals.js";
import { runAgent, type RunAgentOptions } from "../runner.js";
import type { RunEvent } from "../run/run-agent.js";
import { loadRunFile, type RunSpec } from "../group/run-file.js";
import { runAgents, type GroupResult, type RunAgentsOptions } from "../group/run-agents.js";

/** A name that matches nothing, where Redis needs some name before it allows a command class at all. */
export const NOTHING = "airlock-learn-{run}-none";
/** The lists a learning run starts empty (kind → list paths); other fields (endpoint, env, vhost) stay. */
const LISTS: Record<string, string[][]> = {
  redis: [["keys", "read"], ["keys", "write"], ["publish"], ["subscribe"]],
  // Its queues stay as written: the runner declares and binds the queues a policy names, and an agent
  // that declares one passively (pika's workers do) or sends to one its exchange does not route to
  // gets NOT_FOUND or silence from RabbitMQ, not a refusal, so there is nothing to learn them from.
  rabbitmq: [["exchanges", "publish"]],
  kafka: [["topics", "produce"], ["topics", "consume"], ["groups"]],
  nats: [["publish"], ["subscribe"]],
  mqtt: [["publish"], ["subscribe"]],
};

export interface Learnt {
  /** Where the addition goes, e.g. ["bus", "redis", "keys", "read"], and what: a name, or true for a flag. */
  path: string[];
  value: string | true;
  /** The refusal it was learnt from. */
  from: Refusal;
}

export interface LearnResult {
  /** The policy as given, with its bus lists replaced by what was learnt. */
  policy: PolicyInput;
  learnt: Learnt[];
  /** Every agent run under this policy, in order: the last round is the check that nothing was left to learn. */
  runs: AgentResult[];
  /** How many rounds (runs of the agent, or of the whole run file) it took. */
  rounds: number;
  /** Refusals no policy line may allow, or that learning does not add (the network). */
  notLearnt: Refusal[];
  /** Whether the last run succeeded with nothing left that a policy line could allow. */
  passed: boolean;
}

export interface LearnOptions extends Omit<RunAgentOptions, "policy" | "outputDir"> {
  policyFile: string;
  /** Where each run's output goes (run-1, run-2, ...). */
  outputDir: string;
  /** At most this many runs (default 8). */
  maxRuns?: number;
  onRun?(run: number, result: AgentResult, learnt: Learnt[]): void;
}

/** The policy file's input, as it is written. */
export async function readPolicyInput(file: string): Promise<PolicyInput> {
  const input = parse(await readFile(file, "utf8")) as PolicyInput;
  // Validated (and reported with file and line) exactly as a run would.
  definePolicy(input, file);
  return input;
}

const at = (obj: Record<string, unknown>, path: string[]): unknown =>
  path.reduce<unknown>((o, k) => (o as Record<string, unknown> | undefined)?.[k], obj);

function setAt(obj: Record<string, unknown>, path: string[], value: unknown): void {
  let o = obj;
  for (const k of path.slice(0, -1)) o = (o[k] ??= {}) as Record<string, unknown>;
  o[path.at(-1)!] = value;
}

/** The policy a learning run uses: the given one with its bus lists holding only what was learnt. */
export function learningPolicy(given: PolicyInput, learnt: Learnt[], withSeeds: boolean): PolicyInput {
  const policy = structuredClone(given) as PolicyInput & { bus?: Record<string, Record<string, unknown>> };
  const bus = (policy.bus ?? {}) as Record<string, Record<string, unknown>>;
  for (const [kind, grant] of Object.entries(bus)) {
    const lists = LISTS[kind];
    if (!grant || typeof grant !== "object" || !lists) continue;
    const roots = new Set([...lists.map((p) => p[0]!), ...(kind === "nats" ? ["reply"] : [])]);
    // Everything but the lists stays as written (endpoint, env, vhost; Kafka's topics.create).
    const next: Record<string, unknown> = Object.fromEntries(Object.entries(grant).filter(([k]) => !roots.has(k)));
    if (kind === "kafka" && at(grant, ["topics", "create"]) === true) setAt(next, ["topics", "create"], true);
    for (const path of lists) {
      const list = learnt
        .filter((l) => l.path[1] === kind && l.path.slice(2).join(".") === path.join("."))
        .filter((l) => !describeOnly(l, learnt))
        .map((l) => l.value as string);
      // Redis allows a command class only with some name granted: a name that matches nothing lets
      // the command through to the key check, whose refusal names the key.
      if (withSeeds && kind === "redis") list.push(NOTHING);
      if (list.length) setAt(next, path, list);
    }
    if (kind === "nats" && learnt.some((l) => l.path.join(".") === "bus.nats.reply")) next.reply = true;
    bus[kind] = next;
  }
  return policy;
}

/**
 * Kafka's clients ask for a topic's metadata (DESCRIBE), or create it, before they produce or
 * consume, and the refusal does not say which: it is learnt as consume, and dropped once the same
 * topic is learnt for produce (which allows describing and creating it too), so a producer does not
 * keep read rights.
 */
function describeOnly(l: Learnt, all: Learnt[]): boolean {
  const path = l.path.join(".");
  return (
    metadataOnly(l.from) &&
    path === "bus.kafka.topics.consume" &&
    !all.some((o) => o !== l && o.value === l.value && o.path.join(".") === path && !metadataOnly(o.from)) &&
    all.some((o) => o.value === l.value && o.path.join(".") === "bus.kafka.topics.produce")
  );
}

/** A Kafka refusal that does not say whether the agent meant to produce or consume: describe, create. */
const metadataOnly = (r: Refusal) => r.kind === "kafka" && (r.action === "describe" || r.action === "create");

/** An id made per message or per request: a UUID, a long hex or decimal number. */
const PER_MESSAGE_ID = /[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}|\b[0-9a-f]{16,}\b|\b\d{6,}\b/i;

/**
 * A refused name with the run's and the agent's tokens written back as {run} and {agent}; a name
 * with an id made per message (a reply key with a UUID in it) becomes the prefix before that id
 * and `*`, since the next run will use another id.
 */
export function generalize(value: string, tokens: { run?: string; agent: string }): string {
  let v = value;
  if (tokens.run) v = v.split(tokens.run).join("{run}");
  v = v.split(tokens.agent).join("{agent}");
  const id = PER_MESSAGE_ID.exec(v);
  return id ? `${v.slice(0, id.index)}*` : v;
}

/** What one policy file has learnt so far, from every agent that runs under it. */
class PolicyLearning {
  readonly learnt: Learnt[] = [];
  readonly runs: AgentResult[] = [];
  private readonly notLearnt = new Map<string, Refusal>();

  constructor(readonly given: PolicyInput) {}

  /** The policy the next run uses. */
  next(): PolicyInput {
    return learningPolicy(this.given, this.learnt, true);
  }

  /** What a run's refusals add (the names generalized with the run's tokens). */
  absorb(result: AgentResult, runToken: string): Learnt[] {
    this.runs.push(result);
    for (const r of result.refusals) if (!r.allow) this.notLearnt.set(refusalKey(r), r);
    const tokens = { run: runToken, agent: busAgentToken(result.name) };
    const added: Learnt[] = [];
    /** Lines learnt before and dropped (describeOnly) that a refused read brings back. */
    const revived: Learnt[] = [];
    for (const r of result.refusals) {
      if (!learnable(r)) continue;
      const value = typeof r.allow!.value === "string" ? generalize(r.allow!.value, tokens) : r.allow!.value;
      const path = r.allow!.path.join(".");
      const known = [...this.learnt, ...added].find((l) => l.path.join(".") === path && l.value === value);
      // Learnt from a describe or create, and dropped once the topic was learnt for produce: a read
      // refused now says the agent consumes it too, and the line stays from here on.
      if (known && metadataOnly(known.from) && !metadataOnly(r) && describeOnly(known, this.learnt)) {
        known.from = r;
        revived.push(known);
      } else if (!known) added.push({ path: r.allow!.path, value, from: r });
    }
    this.learnt.push(...added);
    return [...revived, ...added];
  }

  result(passed: boolean, rounds: number): LearnResult {
    return {
      rounds,
      policy: learningPolicy(this.given, this.learnt, false),
      learnt: this.learnt,
      runs: this.runs,
      notLearnt: [...this.notLearnt.values()],
      passed,
    };
  }
}

/** A refusal a policy line could allow (the name learning seeds Redis with aside). */
const learnable = (r: Refusal) =>
  r.allow !== undefined && !(typeof r.allow.value === "string" && r.allow.value.startsWith("airlock-learn-"));

/** Learnable: a refusal a policy line could allow. The agent passes with the others (CONFIG, $SYS) still refused. */
const passes = (r: AgentResult) => r.status === "succeeded" && !r.refusals.some((x) => x.allow);

/** One agent, run on its own (each run a group of its own, as `airlock up` runs agents: {run} is AIRLOCK_GROUP_RUN_ID). */
export async function learn(options: LearnOptions): Promise<LearnResult> {
  const { policyFile, outputDir, maxRuns = 8, onRun, ...run } = options;
  const learning = new PolicyLearning(await readPolicyInput(policyFile));
  let last!: AgentResult;
  let rounds = 0;
  for (let i = 1; i <= maxRuns; i++) {
    rounds = i;
    const policy = definePolicy(learning.next(), policyFile);
    const group = { name: `learn-${basename(policyFile)}`, runId: `learn-${randomBytes(4).toString("hex")}-${i}` };
    last = await runAgent({ ...run, policy, group, outputDir: join(outputDir, `run-${i}`) });
    const added = learning.absorb(last, group.runId);
    onRun?.(i, last, added);
    if (!added.length) break;
  }
  return learning.result(passes(last), rounds);
}

export interface LearnRunOptions extends Omit<RunAgentsOptions, "outputDir"> {
  outputDir: string;
  maxRuns?: number;
  onRun?(run: number, group: GroupResult, learnt: Learnt[]): void;
}

/**
 * Every agent of a run file together (a consumer must be subscribed before its producer may send),
 * each policy file learning from the agents that run under it; the run files' policies are written
 * to a folder of the run's own for each round, never over the user's.
 */
export async function learnRun(runFile: string, options: LearnRunOptions): Promise<Map<string, LearnResult>> {
  const { outputDir, maxRuns = 8, onRun, ...rest } = options;
  const spec = await loadRunFile(runFile);
  const learning = new Map<string, PolicyLearning>();
  for (const a of spec.agents)
    if (!learning.has(a.policy)) learning.set(a.policy, new PolicyLearning(await readPolicyInput(a.policy)));
  const scratch = await mkdtemp(join(tmpdir(), "airlock-learn-"));
  let last!: GroupResult;
  let rounds = 0;
  try {
    for (let i = 1; i <= maxRuns; i++) {
      rounds = i;
      const files = new Map<string, string>();
      for (const [file, l] of learning) {
        const path = join(scratch, `${i}-${files.size}-${basename(file)}`);
        await writeFile(path, stringify(anchored(l.next(), file)));
        files.set(file, path);
      }
      const round: RunSpec = { ...spec, agents: spec.agents.map((a) => ({ ...a, policy: files.get(a.policy)! })) };
      const early = roundEnder(rest.signal);
      try {
        last = await runAgents(round, {
          ...rest,
          outputDir: join(outputDir, `run-${i}`),
          signal: early.signal,
          onEvent: (event) => {
            early.seen(event);
            rest.onEvent?.(event);
          },
        });
      } finally {
        early.done();
      }
      const added = spec.agents.flatMap((a, k) => learning.get(a.policy)!.absorb(last.results[k]!, last.runId));
      onRun?.(i, last, added);
      if (!added.length) break;
    }
  } finally {
    await rm(scratch, { recursive: true, force: true });
  }
  const passed = last.results.every(passes);
  return new Map([...learning].map(([file, l]) => [file, l.result(passed, rounds)]));
}

/** How long a round goes on after the last new refusal a line could allow. */
export const ROUND_SETTLE_MS = 4000;

/**
 * Ends a round early. Once something a line could allow was refused, the round cannot pass (it is
 * granted only in the next), and its agents would often wait out their timeouts (a consumer waits
 * for what its producer could not send). So the round goes on while new refusals come (the live
 * list's "refused" events, or an agent's end), and ROUND_SETTLE_MS after the last one its agents are
 * stopped; what they were refused so far is read as at any end, and what they would have met later
 * comes up in the next round.
 */
function roundEnder(outer: AbortSignal | undefined): {
  signal: AbortSignal;
  seen(event: RunEvent): void;
  done(): void;
} {
  const stop = new AbortController();
  let timer: NodeJS.Timeout | undefined;
  const onOuter = () => stop.abort(outer?.reason);
  outer?.addEventListener("abort", onOuter, { once: true });
  if (outer?.aborted) stop.abort(outer.reason);
  const known = new Set<string>();
  return {
    signal: stop.signal,
    seen(event) {
      const refusals =
        event.type === "refused" ? event.refusals : event.type === "finished" ? event.result.refusals : [];
      const fresh = refusals.filter(learnable).filter((r) => !known.has(`${event.agent} ${refusalKey(r)}`));
      if (!fresh.length || stop.signal.aborted) return;
      for (const r of fresh) known.add(`${event.agent} ${refusalKey(r)}`);
      clearTimeout(timer);
      timer = setTimeout(() => stop.abort(new Error("a refusal to learn from: the round ends")), ROUND_SETTLE_MS);
    },
    done() {
      clearTimeout(timer);
      outer?.removeEventListener("abort", onOuter);
    },
  };
}

/**
 * A policy written somewhere else than its file (a round's copy in the scratch folder): a path it
 * gives relative to its file (packages.pip: requirements.txt) made absolute, so it still names the
 * same file.
 */
export function anchored(input: PolicyInput, policyFile: string): PolicyInput {
  const packages = input.packages;
  if (!packages || Array.isArray(packages) || typeof packages.pip !== "string" || isAbsolute(packages.pip))
    return input;
  return { ...input, packages: { ...packages, pip: resolve(dirname(policyFile), packages.pip) } };
}

/** `policies/x.yaml` → `policies/x.learned.yaml`. */
export function learnedFileFor(policyFile: string): string {
  return join(dirname(policyFile), `${basename(policyFile).replace(/\.ya?ml$/, "")}.learned.yaml`);
}
