/**
 * One Isolated Agents SDK agent, run as any other airlock run: its SDK policy translated
 * (sdk-policy.ts), rights from the file beside its script (rights-file.ts), packages pinned
 * (pins.ts), the start held until the subscribers it publishes to are in place (rendezvous.ts),
 * then the same runAgent — gate, per-run broker identities, refusals, result file — as `airlock run`.
 */
import { mkdir, readdir } from "node:fs/promises";
import { relative, resolve } from "node:path";
import { PolicyError } from "../errors.js";
import { definePolicy, type Policy, type PolicyInput } from "../policy/index.js";
import type { RunEvent } from "../run/run-agent.js";
import { type AgentResult, writeResult } from "../run/result.js";
import type { Runner } from "../runner.js";
import { pinPackages } from "./pins.js";
import { pubSubNames, Rendezvous, type RendezvousOptions } from "./rendezvous.js";
import { findRightsFile, readRightsFile } from "./rights-file.js";
import {
  inSdkTerms,
  type SdkRequest,
  sdkFix,
  sdkRequestSchema,
  SdkRequestError,
  translatePolicy,
} from "./sdk-policy.js";

export interface SdkRunOptions {
  runner: Runner;
  onEvent?: (event: RunEvent) => void;
  signal?: AbortSignal;
  /** Where pairs meet (tests give their own). */
  rendezvous?: RendezvousOptions;
}

export interface SdkResult extends AgentResult {
  /** What the front end chose for the user: pins, rights the script reached without, variables the identity sets. */
  sdk: { rightsFile?: string; notes: string[]; waitedFor: string[] };
}

export function parseSdkRequest(value: unknown): SdkRequest {
  const parsed = sdkRequestSchema.safeParse(value);
  if (!parsed.success) {
    const i = parsed.error.issues[0]!;
    throw new SdkRequestError(`${i.path.join(".") || "(top)"}: ${i.message}`);
  }
  return parsed.data;
}

/** The airlock policy for the request (thrown problems are in the SDK's terms), and what was chosen. */
export async function sdkPolicy(
  request: SdkRequest,
): Promise<{ policy: Policy; input: PolicyInput; rightsFile?: string; notes: string[] }> {
  const script = resolve(request.caller.file);
  const rightsPath = request.policy.bus ? undefined : await findRightsFile(script);
  const rights = rightsPath ? await readRightsFile(rightsPath) : undefined;
  const pinned = await pinPackages(request.policy.pip_packages ?? [], script, request.python);
  const { policy: input, rightless, fromIdentity } = translatePolicy(request, rights?.agents[request.name], pinned.pip);
  const notes = [...pinned.notes];
  const where = rights ? rights.file : `airlock.yaml beside ${relative(process.cwd(), script) || script}`;
  for (const kind of rightless)
    notes.push(
      `${kind}: no rights for ${request.name} in ${where}; its identity may do nothing (refusals name the lines to add)`,
    );
  if (fromIdentity.length)
    notes.push(`${fromIdentity.join(", ")}: this run's own broker identity, not the host's values`);
  try {
    return {
      policy: definePolicy(input, request.caller.file),
      input,
      ...(rights ? { rightsFile: rights.file } : {}),
      notes,
    };
  } catch (err) {
    if (err instanceof PolicyError) throw inSdkTerms(err, request, rights?.file);
    throw err;
  }
}

export async function runSdkAgent(request: SdkRequest, options: SdkRunOptions): Promise<SdkResult> {
  const { policy, input, rightsFile, notes } = await sdkPolicy(request);
  const pair = await Rendezvous.join(request.name, pubSubNames(input), options.rendezvous);
  try {
    // The SDK's working_dir need not exist yet (its page passes ./workspace). An empty one is not
    // mounted (there is nothing to read in it), so the run may take a sandbox from the warm pool.
    let workingDir: string | undefined;
    if (request.working_dir) {
      await mkdir(request.working_dir, { recursive: true });
      if ((await readdir(request.working_dir)).length) workingDir = request.working_dir;
      else notes.push(`working_dir ${relative(process.cwd(), request.working_dir) || "."} is empty: not mounted`);
    }
    const waitedFor = pair ? await pair.waitForSubscribers(policy.timeoutSeconds * 1000, options.signal) : [];
    const result = await options.runner.runAgent({
      agent: request.agent,
      runtime: "python",
      name: request.name,
      policy,
      outputDir: request.host_output_path,
      ...(workingDir ? { workingDir } : {}),
      ...(options.signal ? { signal: options.signal } : {}),
      onEvent: (event) => {
        if (event.type === "ready") void pair?.markReady();
        options.onEvent?.(event);
      },
    });
    const sdk = { ...(rightsFile ? { rightsFile } : {}), notes, waitedFor };
    if (!result.refusals.length && !result.error) return { ...result, sdk };
    // The record, the result file and the failure reason say where each line goes for this user.
    const words = (text: string) => sdkFix(text, request, rightsFile);
    const translated: SdkResult = {
      ...result,
      refusals: result.refusals.map((r) => ({ ...r, fix: words(r.fix) })),
      ...(result.error ? { error: words(result.error) } : {}),
      sdk,
    };
    await writeResult(translated);
    return translated;
  } finally {
    await pair?.leave();
  }
}
