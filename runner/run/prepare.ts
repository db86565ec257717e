/**
 * The first stage of a run, before the engine is touched: the policy, the working directory and
 * its hidden secrets, the bundled agent, the output folder and the agent's environment. Everything
 * here fails with an error that names what to fix.
 */
import { chmod, mkdir, mkdtemp, stat } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { RunOptionsError } from "../errors.js";
import { definePolicy, loadPolicy, type Policy, type PolicyInput } from "../policy/index.js";
import type { AgentLanguage, StagedAgent } from "../languages/language.js";
import type { LanguageName } from "../languages/names.js";
import { chooseLanguage } from "../languages/registry.js";
import { agentEnvironment } from "./env.js";
import type { EgressCa } from "./egress-ca.js";
import type { WireTaps } from "../bus/wire-taps.js";
import type { TerminatingInput } from "./https-egress.js";
import { headerSecretNames, prepareTerminating, terminates, TRUST_ENV } from "./https-trust.js";
import { agentUser, prepareOutputDir, SANDBOX_UID, type AgentUser } from "./output.js";
import { workspaceMounts, type WorkspaceMounts } from "./workspace.js";

export interface PreparedRun {
  policy: Policy;
  user: AgentUser;
  env: Record<string, string>;
  workspace: WorkspaceMounts;
  /** A folder of the runner's own for this run (hosts file, bundle), removed afterwards. */
  runDir: string;
  /** The language the agent runs in (for a command: whose image it runs in). */
  language: AgentLanguage;
  /** The agent file, staged into bundleDir by its language. */
  staged?: StagedAgent;
  bundleDir?: string;
  /** The gate terminates HTTPS for some of the policy's services: what it needs, and the trust files to mount at /etc/airlock. */
  https?: { terminating: TerminatingInput; trustDir: string };
  /** The run's taps on its brokers' connections (refusals read off the wire): the gate feeds them, the identities report from them. */
  taps?: WireTaps;
}

export interface PrepareInput {
  policy: string | Policy | PolicyInput;
  agent?: string;
  runtime?: LanguageName;
  workingDir?: string;
  outputDir: string;
  env?: Record<string, string>;
  airlockVars: Record<string, string>;
  /** Type-check a TypeScript agent with the project's own TypeScript first. */
  typecheck?: boolean;
  /** The runner's CA for HTTPS the gate terminates. */
  egressCa: EgressCa;
  /** CAs the gate trusts for services' certificates, instead of Node's. */
  upstreamCa?: string;
}

export async function resolvePolicy(policy: PrepareInput["policy"]): Promise<Policy> {
  if (typeof policy === "string") return loadPolicy(policy);
  if (isNormalizedPolicy(policy)) return policy;
  return definePolicy(policy);
}

function isNormalizedPolicy(value: unknown): value is Policy {
  const v = value as Policy;
  return (
    typeof v === "object" &&
    v !== null &&
    typeof v.source === "string" &&
    typeof v.network?.disabled === "boolean" &&
    Array.isArray(v.network.allowedEndpoints) &&
    typeof v.resources?.memoryBytes === "number"
  );
}

/** The folder mounted at /workspace, checked: it exists, and the sandbox user can read it. */
async function checkWorkingDir(dir: string): Promise<void> {
  // Missing or unreadable is reported below with the fix.
  const wd = await stat(dir).catch(() => undefined);
  if (!wd?.isDirectory())
    throw new RunOptionsError(
      `working directory ${dir} does not exist or is not a folder`,
      "pass an existing folder as workingDir (it is mounted read-only at /workspace)",
    );
  if (process.getuid?.() === 0 && (wd.mode & 0o005) !== 0o005) {
    // Root's agents run as an unprivileged uid, which needs to read the folder.
    throw new RunOptionsError(
      `working directory ${dir} is not readable by the sandbox user (uid ${SANDBOX_UID}; mode ${(wd.mode & 0o777).toString(8)})`,
      `make it readable (chmod o+rx ${dir}), or pass another workingDir`,
    );
  }
}

export async function prepareRun(input: PrepareInput, onPolicy: (policy: Policy) => void): Promise<PreparedRun> {
  const policy = await resolvePolicy(input.policy);
  onPolicy(policy);
  const language = chooseLanguage({ agent: input.agent, runtime: input.runtime, policy });
  const workingDir = input.workingDir === undefined ? undefined : resolve(input.workingDir);
  if (workingDir) await checkWorkingDir(workingDir);
  const runDir = await mkdtemp(join(tmpdir(), "airlock-"));
  await chmod(runDir, 0o755);
  const emptyDir = join(runDir, "empty");
  await mkdir(emptyDir, { mode: 0o555 });
  const workspace = await workspaceMounts(workingDir, policy.workspace.include, emptyDir);
  let bundleDir: string | undefined;
  let staged: StagedAgent | undefined;
  if (input.agent) {
    bundleDir = join(runDir, "bundle");
    await mkdir(bundleDir, { mode: 0o755 });
    staged = await language.stage(input.agent, policy, bundleDir, { ...(input.typecheck ? { typecheck: true } : {}) });
  }
  const user = agentUser();
  await prepareOutputDir(input.outputDir);
  // Python writes its lines as they are printed (not at exit) in any image; a policy may say otherwise.
  const terminating = terminates(policy);
  const https = terminating
    ? await prepareTerminating({
        policy,
        ca: input.egressCa,
        given: input.env,
        hostEnv: process.env,
        runDir,
        ...(input.upstreamCa ? { upstreamCa: input.upstreamCa } : {}),
      })
    : undefined;
  // The headers' variables are the gate's: given to the run, never passed into the sandbox.
  const secretNames = new Set(headerSecretNames(policy));
  const given = input.env
    ? Object.fromEntries(Object.entries(input.env).filter(([k]) => !secretNames.has(k)))
    : undefined;
  const env = agentEnvironment(policy, {
    ...(given ? { given } : {}),
    hostEnv: process.env,
    defaults: { PYTHONUNBUFFERED: "1", ...(terminating ? TRUST_ENV : {}) },
    airlockVars: {
      ...input.airlockVars,
      AIRLOCK_OUTPUT_DIR: "/output",
      AIRLOCK_WORKSPACE: "/workspace",
      AIRLOCK_ALLOWED_ENDPOINTS: policy.network.disabled
        ? ""
        : policy.network.allowedEndpoints.map((e) => e.raw).join(","),
      HOME: "/tmp",
    },
  });
  return {
    policy,
    user,
    env,
    workspace,
    runDir,
    language,
    ...(staged ? { staged } : {}),
    ...(bundleDir ? { bundleDir } : {}),
    ...(https ? { https } : {}),
  };
}
