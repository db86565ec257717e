/**
 * What airlock reads from the environment, in one place: its folders and every `AIRLOCK_*` knob of the
 * host side. Each function reads its variable when asked (a caller or a test may change the
 * environment between runs), checks it, and a bad value is an error that names the variable and the
 * fix. Variables airlock sets inside agent containers (AIRLOCK_RUN_ID, ...) are not settings: they
 * are written where the container is made.
 */
import { homedir } from "node:os";
import { join } from "node:path";
import { RunOptionsError } from "./errors.js";

type Env = NodeJS.ProcessEnv;

/** airlock's state folder: AIRLOCK_STATE_DIR, else $XDG_STATE_HOME/airlock, else ~/.local/state/airlock (/var/lib/airlock for root). */
export function stateDir(env: Env = process.env): string {
  if (env.AIRLOCK_STATE_DIR) return env.AIRLOCK_STATE_DIR;
  if (process.getuid?.() === 0 && !env.XDG_STATE_HOME) return "/var/lib/airlock";
  return join(env.XDG_STATE_HOME ?? join(homedir(), ".local", "state"), "airlock");
}

/** Where `airlock brokers` keeps its brokers' data, logs and admin credentials (AIRLOCK_BROKERS_STATE). */
export function brokersStateDir(env: Env = process.env): string {
  return env.AIRLOCK_BROKERS_STATE ?? join(stateDir(env), "brokers");
}

/** The host folder of pooled sandboxes' agent files: $XDG_CACHE_HOME/airlock/sandboxes, else ~/.cache/airlock/sandboxes. */
export function sandboxCacheDir(env: Env = process.env): string {
  return join(env.XDG_CACHE_HOME || join(homedir(), ".cache"), "airlock", "sandboxes");
}

/** The backend named by AIRLOCK_BACKEND, as given (the backend registry checks the name). */
export function backendSetting(env: Env = process.env): string | undefined {
  return env.AIRLOCK_BACKEND || undefined;
}

/** AIRLOCK_LOOPBACK: how localhost endpoints reach the host, when forced. */
export function loopbackSetting(env: Env = process.env): "kernel" | "forwarder" | undefined {
  const value = env.AIRLOCK_LOOPBACK;
  if (!value) return undefined;
  if (value === "kernel" || value === "forwarder") return value;
  throw new RunOptionsError(
    `AIRLOCK_LOOPBACK=${value} is not a way airlock reaches the host`,
    "set AIRLOCK_LOOPBACK to kernel or forwarder, or unset it",
  );
}

/**
 * AIRLOCK_LIVE_REFUSALS: 0 keeps no live list of refusals in the sandbox (/run/airlock stays empty,
 * ctx.denials() returns nothing); the result lists them either way. Default 1.
 */
export function liveRefusalsSetting(env: Env = process.env): boolean {
  return onByDefault(env, "AIRLOCK_LIVE_REFUSALS", "no live list of refusals in the sandbox");
}

/**
 * AIRLOCK_WIRE_TAPS: 0 does not read refusals off the agent's connections to a localhost Mosquitto
 * (bus/mqtt-tap.ts): MQTT refusals are then not in the record, and a root runner takes the broker's
 * port through the kernel (no forwarder in between: a lower round trip). Default 1.
 */
export function wireTapsSetting(env: Env = process.env): boolean {
  return onByDefault(env, "AIRLOCK_WIRE_TAPS", "MQTT refusals not read off the connection");
}

/** A 0/1 setting that is on unless set to 0; `off` says what 0 means. */
function onByDefault(env: Env, name: string, off: string): boolean {
  const value = env[name];
  if (value === undefined || value === "" || value === "1") return true;
  if (value === "0") return false;
  throw new RunOptionsError(`${name}=${value} is neither 0 nor 1`, `set ${name} to 0 (${off}) or 1, or unset it`);
}

/** AIRLOCK_POOL: sandboxes kept ready per shape (0, the default: no warm pool unless a runner asks for one). */
export function warmPoolSetting(env: Env = process.env): number {
  return count(env, "AIRLOCK_POOL", 0);
}

/** AIRLOCK_GATE_POOL: gate containers kept ready for images airlock did not build (default 1). */
export function gatePoolSetting(env: Env = process.env): number {
  return count(env, "AIRLOCK_GATE_POOL", 1);
}

/** AIRLOCK_BASE_IMAGE: the base image to build airlock's images on, instead of the official one. */
export function baseImageSetting(env: Env = process.env): string | undefined {
  return env.AIRLOCK_BASE_IMAGE || undefined;
}

/** AIRLOCK_PYTHON_BASE_IMAGE: the base of the Python agent image, instead of the official one. */
export function pythonBaseImageSetting(env: Env = process.env): string | undefined {
  return env.AIRLOCK_PYTHON_BASE_IMAGE || undefined;
}

/** AIRLOCK_RABBITMQ_AMQP_PORT: the AMQP port of the RabbitMQ whose management API airlock administers (default 5672). */
export function rabbitmqAmqpPort(env: Env = process.env): number {
  const port = count(env, "AIRLOCK_RABBITMQ_AMQP_PORT", 5672);
  if (port < 1 || port > 65535)
    throw new RunOptionsError(
      `AIRLOCK_RABBITMQ_AMQP_PORT=${port} is not a port`,
      "set it to the broker's AMQP port (1-65535), or unset it",
    );
  return port;
}

/** AIRLOCK_K8S_*: the Kubernetes backend's defaults (options given in code win over them). */
export function kubernetesSettings(env: Env = process.env): {
  namespace?: string;
  loadImage?: string;
  hostAddress?: string;
  context?: string;
} {
  const pick = (name: string) => env[name] || undefined;
  const out: { namespace?: string; loadImage?: string; hostAddress?: string; context?: string } = {};
  const namespace = pick("AIRLOCK_K8S_NAMESPACE");
  const loadImage = pick("AIRLOCK_K8S_LOAD_IMAGE");
  const hostAddress = pick("AIRLOCK_K8S_HOST_ADDRESS");
  const context = pick("AIRLOCK_K8S_CONTEXT");
  if (namespace) out.namespace = namespace;
  if (loadImage) out.loadImage = loadImage;
  if (hostAddress) out.hostAddress = hostAddress;
  if (context) out.context = context;
  return out;
}

/** DOCKER_HOST, when set: the engine the default Docker client talks to. */
export function dockerHostSetting(env: Env = process.env): string | undefined {
  return env.DOCKER_HOST || undefined;
}

function count(env: Env, name: string, fallback: number): number {
  const raw = env[name];
  if (raw === undefined || raw === "") return fallback;
  if (!/^\d+$/.test(raw.trim()))
    throw new RunOptionsError(
      `${name}=${raw} is not a whole number`,
      `set ${name} to a number such as ${fallback}, or unset it`,
    );
  return Number(raw);
}
