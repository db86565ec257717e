/**
 * The host's pip settings, passed into image builds so that `pip install` in a build works wherever it
 * works on the host: the index (PIP_INDEX_URL, PIP_EXTRA_INDEX_URL, pip.conf), trusted hosts, timeouts,
 * a proxy, and the CA bundle (PIP_CERT, pip.conf's cert, else the bundle the npm path uses). They go
 * into the build as a pip.conf of their own and the CA file, used only in the install stage. Settings
 * that name host paths (find-links, a cert path) are not copied as they are: the build cannot see them.
 */
import { readFileSync } from "node:fs";
import { homedir } from "node:os";
import { join } from "node:path";
import { registrySettings } from "../../images/registry-settings.js";

export interface PipSettings {
  /** The pip.conf the build uses (its [global] section). */
  conf: Buffer;
  caBundle: Buffer;
  /** The index packages come from, for messages. */
  index: string;
  proxyArgs: Record<string, string>;
}

const KEYS = ["index-url", "extra-index-url", "trusted-host", "timeout", "retries", "proxy"] as const;

function confFiles(env: NodeJS.ProcessEnv): string[] {
  const xdg = env.XDG_CONFIG_HOME ?? join(homedir(), ".config");
  // pip's own order: site-wide, then the user's, then PIP_CONFIG_FILE; later ones win.
  return [
    "/etc/pip.conf",
    "/etc/xdg/pip/pip.conf",
    join(homedir(), ".pip", "pip.conf"),
    join(xdg, "pip", "pip.conf"),
    ...(env.PIP_CONFIG_FILE ? [env.PIP_CONFIG_FILE] : []),
  ];
}

/** The [global] and [install] values of an ini-style pip.conf (continuation lines joined). */
export function parsePipConf(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  let section = "";
  let last: string | undefined;
  for (const raw of text.split(/\r?\n/)) {
    if (/^\s*[#;]/.test(raw) || raw.trim() === "") continue;
    const header = /^\s*\[([^\]]+)\]\s*$/.exec(raw);
    if (header) {
      section = header[1]!.trim().toLowerCase();
      last = undefined;
      continue;
    }
    if (section !== "global" && section !== "install") continue;
    if (/^\s/.test(raw) && last) {
      out[last] = `${out[last]} ${raw.trim()}`.trim();
      continue;
    }
    const kv = /^\s*([A-Za-z0-9_-]+)\s*[=:]\s*(.*?)\s*$/.exec(raw);
    if (kv) {
      last = kv[1]!.toLowerCase().replace(/_/g, "-");
      out[last] = kv[2]!;
    }
  }
  return out;
}

export function pipSettings(env: NodeJS.ProcessEnv = process.env): PipSettings {
  const values: Record<string, string> = {};
  for (const file of confFiles(env)) {
    try {
      Object.assign(values, parsePipConf(readFileSync(file, "utf8")));
    } catch {
      // no such file
    }
  }
  for (const key of KEYS) {
    const fromEnv = env[`PIP_${key.toUpperCase().replace(/-/g, "_")}`];
    if (fromEnv) values[key] = fromEnv;
  }
  const lines = ["[global]", ...KEYS.filter((k) => values[k]).map((k) => `${k} = ${values[k]}`), ""];
  const npm = registrySettings(env);
  let caBundle = npm.caBundle;
  for (const file of [env.PIP_CERT, values.cert]) {
    if (!file) continue;
    try {
      caBundle = readFileSync(file);
      break;
    } catch {
      // unreadable: try the next one
    }
  }
  return {
    conf: Buffer.from(lines.join("\n")),
    caBundle,
    index: values["index-url"] ?? "https://pypi.org/simple",
    proxyArgs: npm.proxyArgs,
  };
}
