/**
 * Typed errors. Every error airlock raises is an AirlockError with a stable `code`,
 * a message that says what went wrong, and (where there is one) the fix.
 */
export class AirlockError extends Error {
  readonly code: string;
  readonly fix?: string;
  constructor(code: string, message: string, options?: { fix?: string; cause?: unknown }) {
    super(options?.fix ? `${message}\n  fix: ${options.fix}` : message, { cause: options?.cause });
    this.name = new.target.name;
    this.code = code;
    this.fix = options?.fix;
  }
}

/** One problem in a policy or run file, located as precisely as the input allows. */
export interface InputIssue {
  /** File the problem is in (or "<inline>" for an object given in code). */
  file: string;
  /** Dotted field path, e.g. "network.allowedEndpoints[1]". Empty for file-level problems. */
  field: string;
  line?: number;
  column?: number;
  message: string;
  fix?: string;
}

export function formatIssue(issue: InputIssue): string {
  const where = issue.line ? `${issue.file}:${issue.line}:${issue.column ?? 1}` : issue.file;
  const field = issue.field ? ` ${issue.field}:` : "";
  const fix = issue.fix ? `\n    fix: ${issue.fix}` : "";
  return `${where}:${field} ${issue.message}${fix}`;
}

/** A policy (or run file) that failed to parse or validate. Raised before any container starts. */
export class PolicyError extends AirlockError {
  readonly file: string;
  readonly issues: InputIssue[];
  constructor(file: string, issues: InputIssue[]) {
    const n = issues.length;
    super(
      "POLICY_INVALID",
      `${file}: ${n} problem${n === 1 ? "" : "s"}\n${issues.map((i) => `  ${formatIssue(i)}`).join("\n")}`,
    );
    this.file = file;
    this.issues = issues;
  }
}

/** The Docker engine could not be reached (not installed, not running, no permission). */
export class DockerUnavailableError extends AirlockError {
  constructor(detail: string, fix: string, cause?: unknown) {
    super("DOCKER_UNAVAILABLE", `Docker engine not reachable: ${detail}`, { fix, cause });
  }
}

/** An image (base, agent, packages layer or gate) could not be built. */
export class ImageBuildError extends AirlockError {
  readonly image: string;
  readonly log: string;
  constructor(image: string, detail: string, log: string, fix?: string) {
    super("IMAGE_BUILD_FAILED", `building ${image} failed: ${detail}`, { fix });
    this.image = image;
    this.log = log;
  }
}

/** The agent file is missing, does not compile, or imports something its policy does not provide. */
export class AgentSourceError extends AirlockError {
  readonly file: string;
  constructor(file: string, message: string, fix?: string) {
    super("AGENT_SOURCE", `${file}: ${message}`, { fix });
    this.file = file;
  }
}

/** runAgent() options that cannot work (output dir is a file, env not allowed by the policy, ...). */
export class RunOptionsError extends AirlockError {
  constructor(message: string, fix?: string) {
    super("RUN_OPTIONS", message, { fix });
  }
}

/** The egress gate could not be put in place; the agent was not started. */
export class GateError extends AirlockError {
  constructor(message: string, fix?: string, cause?: unknown) {
    super("GATE_FAILED", message, { fix, cause });
  }
}

/** An endpoint's DNS name did not resolve on the host when the agent started. */
export class EndpointResolutionError extends AirlockError {
  constructor(host: string, cause: unknown, policyFile: string) {
    super("ENDPOINT_UNRESOLVED", `endpoint host "${host}" (from ${policyFile}) does not resolve on this host`, {
      fix: `check the name, or list the broker by IPv4 address in network.allowedEndpoints`,
      cause,
    });
  }
}

/** A policy grants rights on a broker that the runner cannot enforce (and the policy or caller requires it). */
export class BusRightsError extends AirlockError {
  constructor(message: string, fix?: string, cause?: unknown) {
    super("BUS_RIGHTS", message, { fix, cause });
  }
}

/** The Kubernetes backend could not reach or use the cluster (no kubeconfig, API refused, RBAC, a Pod that cannot run). */
export class KubernetesError extends AirlockError {
  constructor(message: string, fix?: string, cause?: unknown) {
    super("KUBERNETES", message, { ...(fix ? { fix } : {}), cause });
  }
}
