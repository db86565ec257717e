/**
 * Connecting to the Docker engine, with an error a person can act on when it is not there.
 */
import { createRequire } from "node:module";
import { withTimeout } from "../../../util/with-timeout.js";
import type Docker from "dockerode";
import { AirlockError, DockerUnavailableError } from "../../../errors.js";
import { dockerHostSetting } from "../../../settings.js";

export type DockerClient = Docker;

let shared: Docker | undefined;

/**
 * The engine named by DOCKER_HOST, or the local socket. One client per process. dockerode is loaded
 * on first use (a quarter of the CLI's start-up otherwise, for commands that never reach the engine).
 */
export function dockerClient(): Docker {
  if (!shared) {
    const DockerCtor = createRequire(import.meta.url)("dockerode") as typeof Docker;
    shared = new DockerCtor();
  }
  return shared;
}

/** Ping the engine; throw DockerUnavailableError with a fix when it does not answer. */
export async function assertDockerReachable(
  docker: Docker = dockerClient(),
  timeoutMs = 5000,
): Promise<{ version: string; apiVersion: string }> {
  const where = dockerHostSetting() ?? engineAddress(docker);
  try {
    const version = await withTimeout(docker.version(), timeoutMs, `no answer from ${where} within ${timeoutMs} ms`);
    return { version: version.Version, apiVersion: version.ApiVersion };
  } catch (err) {
    throw explainDockerError(err, where);
  }
}

export function explainDockerError(
  err: unknown,
  where = dockerHostSetting() ?? "/var/run/docker.sock",
): DockerUnavailableError {
  if (err instanceof DockerUnavailableError) return err;
  const code = (err as NodeJS.ErrnoException)?.code;
  const message = (err as Error)?.message ?? String(err);
  // The address came from DOCKER_HOST: that variable is what to fix, not the installation.
  const fromEnv = dockerHostSetting() ? ` (from DOCKER_HOST=${dockerHostSetting()})` : "";
  const envFix = dockerHostSetting()
    ? "fix or unset DOCKER_HOST (unset: the local socket /var/run/docker.sock), or start the engine it names"
    : "";
  if (code === "ENOENT") {
    if (fromEnv) return new DockerUnavailableError(`${where} does not exist${fromEnv}`, envFix, err);
    return new DockerUnavailableError(
      `${where} does not exist (is Docker installed and running?)`,
      "install Docker and start it (on Debian: apt-get install docker.io && dockerd &)",
      err,
    );
  }
  if (code === "ETIMEDOUT") {
    return new DockerUnavailableError(
      `the engine at ${where} stopped answering`,
      "check that dockerd is running and healthy (docker info)",
      err,
    );
  }
  if (code === "ECONNREFUSED") {
    if (fromEnv) return new DockerUnavailableError(`nothing listens on ${where}${fromEnv}`, envFix, err);
    return new DockerUnavailableError(
      `nothing listens on ${where} (the engine is stopped)`,
      "start the Docker engine (systemctl start docker, or dockerd &)",
      err,
    );
  }
  if (code === "EACCES" || code === "EPERM") {
    return new DockerUnavailableError(
      `permission denied on ${where}`,
      "add your user to the docker group (sudo usermod -aG docker $USER, then log in again)",
      err,
    );
  }
  return new DockerUnavailableError(message, "check that `docker info` works in this shell", err);
}

/** Where a client talks to the engine: its socket path or host:port. */
export function engineAddress(docker: Docker): string {
  const modem = docker.modem as unknown as { socketPath?: string; host?: string; port?: number } | undefined;
  if (modem?.socketPath) return modem.socketPath;
  if (modem?.host) return `${modem.host}:${modem.port ?? ""}`;
  return dockerHostSetting() ?? "/var/run/docker.sock";
}

/** True when a dockerode error means "no such object". */
export function isNotFound(err: unknown): boolean {
  return (err as { statusCode?: number })?.statusCode === 404;
}

/** True when the engine stopped answering (socket gone or refused) rather than rejecting a request. */
export function isConnectionError(err: unknown): boolean {
  const code = (err as NodeJS.ErrnoException)?.code;
  return code === "ENOENT" || code === "ECONNREFUSED" || code === "ECONNRESET" || code === "EPIPE" || code === "EACCES";
}

/**
 * `work`, with a failure that means the engine went away (its socket gone or refused) explained
 * with the fix; airlock's own errors and any other failure pass unchanged.
 */
export async function engineErrorsExplained<T>(work: () => Promise<T>): Promise<T> {
  try {
    return await work();
  } catch (err) {
    throw err instanceof AirlockError || !isConnectionError(err) ? err : explainDockerError(err);
  }
}
