/**
 * What a run whose policy has the gate terminate HTTPS (headers, inspect) gets ready before the
 * agent starts: the values of the variables its headers name, taken from the caller (runAgent's
 * `env`, else the caller's environment) and kept on the host; and the files that make the agent's
 * TLS clients trust the runner's CA, mounted read-only at /etc/airlock with the variables that point
 * Node, OpenSSL (Python's ssl, httpx), requests and curl at them.
 */
import { mkdir, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { rootCertificates } from "node:tls";
import { RunOptionsError } from "../errors.js";
import type { Policy } from "../policy/index.js";
import { fillHeader, headerVariables } from "../policy/https-service.js";
import type { EgressCa } from "./egress-ca.js";
import type { TerminatingInput } from "./https-egress.js";

/** Where the trust files are inside the sandbox. */
export const TRUST_MOUNT = "/etc/airlock";
export const TRUST_FILES = { ca: "egress-ca.pem", bundle: "ca-bundle.pem" } as const;

/** The variables that make common TLS clients trust the files at TRUST_MOUNT. */
export const TRUST_ENV: Readonly<Record<string, string>> = {
  NODE_EXTRA_CA_CERTS: `${TRUST_MOUNT}/${TRUST_FILES.ca}`,
  SSL_CERT_FILE: `${TRUST_MOUNT}/${TRUST_FILES.bundle}`,
  REQUESTS_CA_BUNDLE: `${TRUST_MOUNT}/${TRUST_FILES.bundle}`,
  CURL_CA_BUNDLE: `${TRUST_MOUNT}/${TRUST_FILES.bundle}`,
};

/** The variables a policy's headers name. */
export function headerSecretNames(policy: Pick<Policy, "network">): string[] {
  return [...new Set(policy.network.https.flatMap((s) => s.headers.flatMap((h) => headerVariables(h.value))))];
}

/** Whether the policy has the gate terminate any service. */
export function terminates(policy: Pick<Policy, "network">): boolean {
  return !policy.network.disabled && policy.network.https.some((s) => s.terminate);
}

/** The values of the headers' variables: from `given`, else the caller's environment; a missing one is an error that says where to set it. */
export function headerSecrets(
  policy: Pick<Policy, "network" | "source">,
  given: Record<string, string | undefined> | undefined,
  hostEnv: NodeJS.ProcessEnv,
): Record<string, string> {
  const secrets: Record<string, string> = {};
  for (const name of headerSecretNames(policy)) {
    const value = given && name in given ? given[name] : hostEnv[name];
    if (value !== undefined) secrets[name] = value;
  }
  for (const service of policy.network.https)
    for (const header of service.headers) {
      const { missing } = fillHeader(header.value, secrets);
      if (missing.length)
        throw new RunOptionsError(
          `${policy.source}: network.https ${service.raw} adds ${header.name} with \${${missing[0]}}, which is not set`,
          `set ${missing[0]} in the environment that runs airlock (or pass it in runAgent's env); the gate adds it, and the agent never sees it`,
        );
    }
  return secrets;
}

/** Write the trust files into `dir` (created): the CA alone, and Node's roots with the CA (for clients that take one bundle). */
export async function writeTrustFiles(dir: string, certificate: string): Promise<void> {
  await mkdir(dir, { recursive: true, mode: 0o755 });
  await Promise.all([
    writeFile(join(dir, TRUST_FILES.ca), certificate, { mode: 0o644 }),
    writeFile(join(dir, TRUST_FILES.bundle), `${rootCertificates.join("\n")}\n${certificate}`, { mode: 0o644 }),
  ]);
}

/** The trust files' contents, for a backend that ships them as data (a Pod's ConfigMap). */
export async function readTrustFiles(dir: string): Promise<{ ca: string; bundle: string }> {
  const [ca, bundle] = await Promise.all([
    readFile(join(dir, TRUST_FILES.ca), "utf8"),
    readFile(join(dir, TRUST_FILES.bundle), "utf8"),
  ]);
  return { ca, bundle };
}

/** What a run that terminates needs: the CA as it uses it, the header values, the trust folder (written). */
export async function prepareTerminating(r: {
  policy: Policy;
  ca: EgressCa;
  given: Record<string, string | undefined> | undefined;
  hostEnv: NodeJS.ProcessEnv;
  runDir: string;
  upstreamCa?: string;
}): Promise<{ terminating: TerminatingInput; trustDir: string }> {
  const secrets = headerSecrets(r.policy, r.given, r.hostEnv);
  const authority = r.ca.authority();
  const trustDir = join(r.runDir, "trust");
  await writeTrustFiles(trustDir, authority.certificate);
  return {
    terminating: { authority, secrets, ...(r.upstreamCa ? { upstreamCa: r.upstreamCa } : {}) },
    trustDir,
  };
}
