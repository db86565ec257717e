/**
 * The host's npm registry, proxy and CA settings, passed into image builds so that package installs
 * work wherever `npm install` works on the host (corporate proxies, TLS-intercepting gateways).
 */
import { readFileSync } from "node:fs";
import { homedir } from "node:os";
import { join } from "node:path";

export interface RegistrySettings {
  registry: string;
  /** CA bundle to trust during builds (empty when the host sets none). */
  caBundle: Buffer;
  caSource?: string;
  /** HTTP(S)_PROXY / NO_PROXY, passed as Docker's predefined build args. */
  proxyArgs: Record<string, string>;
}

const CA_CANDIDATES = ["NODE_EXTRA_CA_CERTS", "SSL_CERT_FILE"];

export function registrySettings(env: NodeJS.ProcessEnv = process.env): RegistrySettings {
  const registry =
    env.npm_config_registry || env.NPM_CONFIG_REGISTRY || npmrcValue("registry") || "https://registry.npmjs.org/";
  let caBundle = Buffer.alloc(0);
  let caSource: string | undefined;
  for (const file of [...CA_CANDIDATES.map((k) => env[k]), npmrcValue("cafile")]) {
    if (!file) continue;
    try {
      caBundle = readFileSync(file);
      caSource = file;
      break;
    } catch {
      // unreadable: try the next one
    }
  }
  const proxyArgs: Record<string, string> = {};
  for (const key of ["HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY", "http_proxy", "https_proxy", "no_proxy"]) {
    if (env[key]) proxyArgs[key] = env[key]!;
  }
  return { registry, caBundle, ...(caSource ? { caSource } : {}), proxyArgs };
}

function npmrcValue(key: string): string | undefined {
  for (const file of [join(process.cwd(), ".npmrc"), join(homedir(), ".npmrc")]) {
    try {
      for (const line of readFileSync(file, "utf8").split("\n")) {
        const m = /^\s*([\w:/.@-]+)\s*=\s*(.*?)\s*$/.exec(line);
        if (m && m[1] === key) return m[2]!.replace(/^"(.*)"$/, "$1");
      }
    } catch {
      // no such file
    }
  }
  return undefined;
}
