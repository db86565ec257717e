/**
 * runAgents(): run a group of agents together (a producer/consumer pair, or more), honouring waitFor
 * constraints, with a result per agent. Each agent keeps its own timeout, so one failing or hanging
 * does not hold the others; an agent whose condition can no longer be met is skipped, not left waiting.
 */
import { RunOptionsError } from "../errors.js";
import { lstat } from "node:fs/promises";
import type { BackendName } from "../backends/backend.js";
import { randomBytes } from "node:crypto";
import { join, resolve } from "node:path";
import { loadPolicy } from "../policy/index.js";
import { chooseLanguage } from "../languages/registry.js";
import { defaultRunner, type Runner } from "../runner.js";
import type { RunEvent } from "../run/run-agent.js";
import { emptyResult, type AgentResult } from "../run/result.js";
import { loadRunFile, type GroupAgent, type RunSpec, type WaitCondition } from "./run-file.js";

/** How often a waiting agent says it still waits. */
const WAIT_NOTICE_MS = 10_000;

export interface RunAgentsOptions {
  /** Type-check every TypeScript agent with the project's own TypeScript before it starts. */
  typecheck?: boolean;
  /** Root output folder; each agent writes to <outputDir>/<agent>. Default: out/<run name>. */
  outputDir?: string;
  signal?: AbortSignal;
  onEvent?: (event: RunEvent) => void;
  /** The runner to run with (default: one per process). */
  runner?: Runner;
  /** Fail an agent whose bus rights cannot be enforced, instead of warning. */
  requireBusRights?: boolean;
  /** Where the agents run (default: the run file's backend, else the runner's). */
  backend?: BackendName;
}

export interface GroupResult {
  name: string;
  source: string;
  /** The group's run id: AIRLOCK_GROUP_RUN_ID in its agents, and what {run} stood for in their bus rights. */
  runId: string;
  status: "succeeded" | "failed";
  durationMs: number;
  outputDir: string;
  /** In the run file's order. */
  results: AgentResult[];
}

type Milestone = "started" | "ready" | "exited";

export async function runAgents(run: string | RunSpec, options: RunAgentsOptions = {}): Promise<GroupResult> {
  const spec = typeof run === "string" ? await loadRunFile(run) : run;
  const runner = options.runner ?? defaultRunner();
  const backend = options.backend ?? spec.backend;
  const started = Date.now();
  // Lower case letters, digits, - and _ only: it becomes part of topic and subject names ({run}), where a "." or "/" would be a separator.
  const group = {
    name: spec.name,
    runId: `${spec.name.toLowerCase().replace(/[^a-z0-9_-]/g, "-")}-${randomBytes(4).toString("hex")}`,
  };
  const outputDir = resolve(options.outputDir ?? join("out", spec.name));
  // Each agent's folder goes below it: a file (or a link) there is a mistake to name now, not an ENOTDIR later.
  const there = await lstat(outputDir).catch(() => undefined);
  if (there && !there.isDirectory())
    throw new RunOptionsError(
      `the output folder ${outputDir} exists and is ${there.isSymbolicLink() ? "a symbolic link" : "a file"}`,
      "choose another --output folder (each agent writes to <folder>/<agent>), or move that file away",
    );
  const reached = new Map<string, Set<Milestone>>(spec.agents.map((a) => [a.name, new Set()]));
  const results = new Map<string, AgentResult>();
  const listeners = new Set<() => void>();
  const changed = () =>
    listeners.forEach((l) => {
      l();
    });

  const mark = (name: string, milestone: Milestone) => {
    reached.get(name)!.add(milestone);
    changed();
  };

  /** true when met, false when it can no longer be met, undefined while pending. */
  const conditionState = (dep: string, condition: WaitCondition): boolean | undefined => {
    const got = reached.get(dep)!;
    const result = results.get(dep);
    switch (condition) {
      case "started":
        return got.has("started") ? true : result ? false : undefined;
      case "ready":
        return got.has("ready") ? true : result ? false : undefined;
      case "exited":
        return result ? result.status !== "skipped" && result.status !== "error" : undefined;
      case "succeeded":
        return result ? result.status === "succeeded" : undefined;
    }
  };

  const waitForDeps = (agent: GroupAgent): Promise<string | undefined> =>
    new Promise((resolveWait) => {
      const check = () => {
        if (options.signal?.aborted) return done("the run was cancelled");
        for (const [dep, condition] of Object.entries(agent.waitFor)) {
          const state = conditionState(dep, condition);
          if (state === false)
            return done(`not started: ${dep} ${results.get(dep)?.status ?? "ended"} before it was ${condition}`);
          if (state === undefined) return;
        }
        done(undefined);
      };
      const done = (reason: string | undefined) => {
        listeners.delete(check);
        options.signal?.removeEventListener("abort", check);
        resolveWait(reason);
      };
      listeners.add(check);
      options.signal?.addEventListener("abort", check, { once: true });
      check();
    });

  /** What `agent` still waits for, in words ("consumer to be ready (running), …"). */
  const pendingText = (agent: GroupAgent): string =>
    Object.entries(agent.waitFor)
      .filter(([dep, condition]) => conditionState(dep, condition) === undefined)
      .map(
        ([dep, condition]) =>
          `${dep} to ${condition === "exited" || condition === "succeeded" ? `have ${condition}` : `be ${condition}`} (${reached.get(dep)!.has("started") ? "running" : "not started yet"})`,
      )
      .join(", ");

  const runOne = async (agent: GroupAgent): Promise<void> => {
    // Say who waits for what, and again while it lasts: a wait is never silent.
    let announce: NodeJS.Timeout | undefined;
    if (Object.keys(agent.waitFor).length) {
      const since = Date.now();
      const say = (prefix: string) => {
        const pending = pendingText(agent);
        if (pending)
          options.onEvent?.({ type: "phase", agent: agent.name, phase: "waiting", message: `${prefix} ${pending}` });
      };
      say("waiting for");
      announce = setInterval(
        () => say(`still waiting (${Math.round((Date.now() - since) / 1000)} s) for`),
        WAIT_NOTICE_MS,
      );
      announce.unref();
    }
    const blocked = await waitForDeps(agent).finally(() => clearInterval(announce));
    const agentOutput = resolve(outputDir, agent.output);
    if (blocked) {
      const skipped: AgentResult = {
        ...emptyResult(agent.name, agentOutput, "skipped"),
        error: blocked,
        resultFile: "",
      };
      skipped.finishedAt = skipped.startedAt;
      results.set(agent.name, skipped);
      options.onEvent?.({ type: "finished", agent: agent.name, result: skipped });
      mark(agent.name, "exited");
      releaseServed(agent);
      return;
    }
    const result = await runner.runAgent({
      name: agent.name,
      ...(agent.agent ? { agent: agent.agent } : {}),
      ...(agent.runtime ? { runtime: agent.runtime } : {}),
      ...(agent.command ? { command: agent.command } : {}),
      ...(agent.image ? { image: agent.image } : {}),
      policy: agent.policy,
      group,
      ...(backend ? { backend } : {}),
      ...(options.requireBusRights ? { requireBusRights: true } : {}),
      outputDir: agentOutput,
      ...(agent.workingDir ? { workingDir: agent.workingDir } : {}),
      ...(agent.env ? { env: agent.env } : {}),
      ...(agent.typecheck || options.typecheck ? { typecheck: true } : {}),
      signal: stoppers.get(agent.name)!.signal,
      onEvent: (event) => {
        if (event.type === "phase" && event.phase === "running") mark(agent.name, "started");
        if (event.type === "ready") mark(agent.name, "ready");
        options.onEvent?.(event);
      },
    });
    const why = stopReasons.get(agent.name);
    if (why && result.status === "cancelled") result.error ??= why;
    results.set(agent.name, result);
    mark(agent.name, "exited");
    releaseServed(agent);
  };

  // An agent that others wait for (a consumer, a worker) serves them. Once every agent that waited
  // for it has ended and one of them did not succeed (a producer that failed at once), it is told to
  // stop (its ctx.signal, then SIGTERM) rather than left to wait for work until its timeout.
  const stoppers = new Map(spec.agents.map((a) => [a.name, new AbortController()]));
  const stopReasons = new Map<string, string>();
  options.signal?.addEventListener(
    "abort",
    () =>
      stoppers.forEach((c) => {
        c.abort(options.signal!.reason);
      }),
    { once: true },
  );
  if (options.signal?.aborted)
    stoppers.forEach((c) => {
      c.abort(options.signal!.reason);
    });
  const dependents = (name: string) => spec.agents.filter((a) => name in a.waitFor);
  const releaseServed = (ended: GroupAgent) => {
    for (const served of Object.keys(ended.waitFor)) {
      if (results.has(served) || !reached.get(served)!.has("started")) continue;
      const waiters = dependents(served);
      if (!waiters.every((w) => results.has(w.name))) continue;
      const failed = waiters.filter((w) => results.get(w.name)!.status !== "succeeded");
      if (!failed.length) continue;
      const why = `stopped: ${failed.map((w) => `${w.name} ${results.get(w.name)!.status}`).join(", ")}, and no agent it serves is left`;
      stopReasons.set(served, why);
      options.onEvent?.({ type: "phase", agent: served, phase: "stopping", message: why });
      stoppers.get(served)!.abort(new Error(why));
    }
  };

  // Agents in images airlock did not build are gated by a gate container: start those now, while
  // the agents are being prepared (best effort). airlock's own images gate themselves.
  void prepareGates(spec, runner);
  void prepareSandboxes(spec, runner, options.backend);
  await Promise.all(spec.agents.map(runOne));
  const ordered = spec.agents.map((a) => results.get(a.name)!);
  return {
    name: spec.name,
    source: spec.source,
    runId: group.runId,
    status: ordered.every((r) => r.status === "succeeded") ? "succeeded" : "failed",
    durationMs: Date.now() - started,
    outputDir,
    results: ordered,
  };
}

/**
 * With a warm pool (airlock up keeps one): agents that wait for others find their sandbox started
 * by the time they start (those that start at once would only compete with their own start).
 */
async function prepareSandboxes(spec: RunSpec, runner: Runner, backend: BackendName | undefined): Promise<void> {
  if (!runner.warmPool || (backend ?? spec.backend ?? "docker") !== "docker") return;
  const waiting = spec.agents.filter((a) => a.agent && !a.image && !a.workingDir && Object.keys(a.waitFor).length);
  await Promise.all(
    waiting.map(async (a) => {
      try {
        const policy = await loadPolicy(a.policy);
        await runner.prepareSandboxes(policy, chooseLanguage({ agent: a.agent, runtime: a.runtime, policy }));
      } catch {
        // The run itself reports what is wrong.
      }
    }),
  );
}

async function prepareGates(spec: RunSpec, runner: Runner): Promise<void> {
  try {
    const withImage = spec.agents.filter((a) => a.image);
    const policies = await Promise.all(withImage.map((a) => loadPolicy(a.policy)));
    await runner.prepareGates(policies.filter((p) => !p.network.disabled).length);
  } catch {
    // The runs themselves report what is wrong.
  }
}
