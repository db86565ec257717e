/**
 * Errors from bus access, phrased for the person reading the agent's log: which broker, which
 * endpoint, and whether the policy allows it (so the fix is in the policy) or not (so the broker
 * itself is not answering).
 */
export class BusConfigError extends Error {
  override name = "BusConfigError";
}

export class BusConnectionError extends Error {
  override name = "BusConnectionError";
  constructor(
    readonly service: string,
    readonly endpoints: string[],
    readonly allowedByPolicy: boolean,
    cause: unknown,
  ) {
    const code = (cause as NodeJS.ErrnoException)?.code ?? (cause as Error)?.name ?? "error";
    const target = endpoints.join(", ");
    const allowed = allowedEndpoints();
    const why = allowedByPolicy
      ? "the policy allows it, so the broker itself is not answering there (is it running?)"
      : `the policy does not allow ${endpoints.length > 1 ? "them" : "it"}: add ${target} to network.allowedEndpoints (allowed now: ${allowed.length ? allowed.join(", ") : "none"})`;
    super(`cannot reach ${service} at ${target} (${code}): ${why}`, { cause });
  }
}

/** The broker refused something the agent's identity has no right to (the policy's bus section decides). */
export class BusPermissionError extends Error {
  override name = "BusPermissionError";
}

export class MessageValidationError extends Error {
  override name = "MessageValidationError";
}

export class RequestTimeoutError extends Error {
  override name = "RequestTimeoutError";
}

/** The endpoints the runner says the policy allows (AIRLOCK_ALLOWED_ENDPOINTS). */
export function allowedEndpoints(env: NodeJS.ProcessEnv = process.env): string[] {
  return (env.AIRLOCK_ALLOWED_ENDPOINTS ?? "").split(",").filter(Boolean);
}

export function isAllowed(hostPort: string, env: NodeJS.ProcessEnv = process.env): boolean {
  const norm = (e: string) => e.toLowerCase().replace(/^127\.0\.0\.1:/, "localhost:");
  const allowed = new Set(allowedEndpoints(env).map(norm));
  return allowed.has(norm(hostPort));
}

export function connectionError(service: string, endpoints: string[], cause: unknown): BusConnectionError {
  return new BusConnectionError(
    service,
    endpoints,
    endpoints.every((e) => isAllowed(e)),
    cause,
  );
}

/** Read a required variable, or explain how the policy provides it. */
export function requireEnv(name: string, service: string, example: string): string {
  const value = process.env[name];
  if (!value) {
    throw new BusConfigError(
      `${service}: ${name} is not set. Set it in the policy (env.set: { ${name}: "${example}" }) or list it in env.allow and pass it in`,
    );
  }
  return value;
}
