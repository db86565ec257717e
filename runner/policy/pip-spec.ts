/**
 * Python packages a policy lists, as pip requirement specifiers (PEP 508, without direct
 * references). They are installed when the image is built, from the index the host's pip uses.
 * A list in the policy and the lines of a requirements.txt are checked by the same rules, so a
 * mistake is reported with its file, line and fix before any image is built.
 */
import { readFileSync } from "node:fs";

export interface PipRequirement {
  /** The distribution's name as written (e.g. "kafka-python"). */
  name: string;
  /** PEP 503 normalized name, used for sorting and comparing. */
  key: string;
  /** The requirement line as pip takes it, e.g. `redis[hiredis]==5.2.1 --hash=sha256:...`. */
  spec: string;
}

export interface PipProblem {
  message: string;
  fix: string;
}

const NAME = /^[A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?$/;
const EXTRAS = /^\[\s*[A-Za-z0-9][A-Za-z0-9._-]*(?:\s*,\s*[A-Za-z0-9][A-Za-z0-9._-]*)*\s*\]$/;
const CLAUSE = /^(~=|===|==|!=|<=|>=|<|>)\s*([A-Za-z0-9][A-Za-z0-9.*+!_-]*)$/;
// Environment markers (`; python_version >= "3.8"`): variables, operators and quoted values only.
const MARKER = /^[A-Za-z0-9_.\s<>=!~'"()-]+$/;
const HASH = /^--hash=(sha256|sha384|sha512):[0-9a-f]{64,128}$/;

export function normalizePipName(name: string): string {
  return name.toLowerCase().replace(/[-_.]+/g, "-");
}

/** What is wrong with one requirement, or undefined when pip can take it. */
export function pipProblem(raw: string): PipProblem | undefined {
  const parsed = splitRequirement(raw);
  return "problem" in parsed ? parsed.problem : undefined;
}

export function parsePipRequirement(raw: string): PipRequirement {
  const parsed = splitRequirement(raw);
  if ("problem" in parsed) throw new TypeError(parsed.problem.message);
  return parsed.requirement;
}

function splitRequirement(raw: string): { requirement: PipRequirement } | { problem: PipProblem } {
  const text = raw.trim();
  if (text === "")
    return {
      problem: { message: "the requirement is empty", fix: "remove the entry, or write a package as name==version" },
    };
  if (text.startsWith("-")) return { problem: optionProblem(text) };
  if (/^(git\+|hg\+|svn\+|bzr\+|https?:|file:|\.{0,2}\/)/.test(text) || text.includes("://")) {
    return {
      problem: {
        message: `"${text}" is a URL or a path, not a package from the index`,
        fix: "name a package and version from the index the host's pip uses (e.g. redis==5.2.1); URLs, VCS links and local paths are not installed",
      },
    };
  }
  // Trailing per-requirement options: only hashes (pip's hash-checking mode).
  const [head, ...options] = text.split(/\s+(?=--)/);
  for (const option of options) {
    if (!HASH.test(option.trim()))
      return {
        problem: {
          message: `"${option.trim()}" is not allowed on a requirement`,
          fix: "only --hash=sha256:<hex> may follow a requirement; the index comes from the host's pip settings",
        },
      };
  }
  const [requirement, marker] = splitOnce(head!, ";");
  if (marker !== undefined && (marker.trim() === "" || !MARKER.test(marker))) {
    return {
      problem: {
        message: `"${marker.trim()}" is not an environment marker pip understands`,
        fix: 'write it like python_version >= "3.8", or remove the part after ";"',
      },
    };
  }
  if (requirement.includes("@")) {
    return {
      problem: {
        message: `"${text}" is a direct reference (name @ URL)`,
        fix: "name a package and version from the index instead, e.g. redis==5.2.1",
      },
    };
  }
  const m = /^([^[(<>=!~]+?)\s*(\[[^\]]*\])?\s*([(<>=!~].*)?$/.exec(requirement.trim());
  const name = m?.[1] ?? "";
  const bare = /^(\S+)\s+(\d\S*)$/.exec(name);
  if (bare)
    return { problem: { message: `"${name}" has a version but no operator`, fix: `write ${bare[1]}==${bare[2]}` } };
  if (!NAME.test(name))
    return {
      problem: {
        message: `"${name || text}" is not a valid Python package name`,
        fix: "use the name as published on the index: letters, digits, '.', '-' and '_'",
      },
    };
  if (m![2] && !EXTRAS.test(m![2]))
    return {
      problem: { message: `"${m![2]}" is not a list of extras`, fix: "write extras like redis[hiredis]==5.2.1" },
    };
  const versions = (m![3] ?? "")
    .trim()
    .replace(/^\((.*)\)$/, "$1")
    .trim();
  if (versions === "") {
    return {
      problem: {
        message: `package "${name}" has no version`,
        fix: `pin it, e.g. ${name}==1.2.3 (pip index versions ${name} lists them), so the cached image is the same on every machine`,
      },
    };
  }
  for (const clause of versions.split(",")) {
    if (!CLAUSE.test(clause.trim())) {
      return {
        problem: {
          message: `"${clause.trim()}" is not a version specifier pip understands`,
          fix: `write the version like ${name}==1.2.3 or ${name}>=1.2,<2`,
        },
      };
    }
  }
  const spec = [
    `${name}${m![2] ?? ""}${versions}${marker !== undefined ? `; ${marker.trim()}` : ""}`,
    ...options.map((o) => o.trim()),
  ].join(" ");
  return { requirement: { name, key: normalizePipName(name), spec } };
}

function optionProblem(text: string): PipProblem {
  const option = text.split(/[\s=]/)[0]!;
  if (["-r", "--requirement", "-c", "--constraint"].includes(option))
    return {
      message: `"${option}" includes another file`,
      fix: "list its packages here (or in this one file) instead",
    };
  if (["-e", "--editable"].includes(option))
    return {
      message: "editable installs (-e) are not supported",
      fix: "name a package and version from the index, e.g. mylib==1.0",
    };
  if (/index-url|find-links|trusted-host|^-i$|^-f$/.test(option))
    return {
      message: `"${option}" is not taken from a policy`,
      fix: "packages come from the index the host's pip uses (PIP_INDEX_URL, pip.conf); set it there",
    };
  return {
    message: `pip option "${option}" is not allowed here`,
    fix: "list only requirements (name==version), one per line",
  };
}

function splitOnce(text: string, separator: string): [string, string | undefined] {
  const at = text.indexOf(separator);
  return at < 0 ? [text, undefined] : [text.slice(0, at), text.slice(at + 1)];
}

/** One problem in a requirements file, with its line. */
export interface RequirementsProblem extends PipProblem {
  line: number;
}

/** The requirements of a requirements.txt: comments, blank lines and line continuations as pip reads them. */
export function parseRequirementsText(text: string): {
  requirements: PipRequirement[];
  problems: RequirementsProblem[];
} {
  const requirements: PipRequirement[] = [];
  const problems: RequirementsProblem[] = [];
  const lines = text.split(/\r?\n/);
  for (let i = 0; i < lines.length; i++) {
    const start = i + 1;
    let line = lines[i]!;
    while (line.endsWith("\\") && i + 1 < lines.length) line = `${line.slice(0, -1)} ${lines[++i]!}`;
    const content = line.replace(/(^|\s)#.*$/, "").trim();
    if (content === "") continue;
    const parsed = splitRequirement(content);
    if ("problem" in parsed) problems.push({ line: start, ...parsed.problem });
    else requirements.push(parsed.requirement);
  }
  return { requirements, problems };
}

/** Read a requirements.txt; throws with a message naming the file when it cannot be read. */
export function readRequirementsFile(path: string): string {
  try {
    return readFileSync(path, "utf8");
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new Error(
      code === "ENOENT"
        ? "file not found"
        : code === "EISDIR"
          ? "is a folder, not a requirements file"
          : `cannot read: ${(err as Error).message}`,
    );
  }
}
