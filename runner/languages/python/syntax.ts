/**
 * A Python agent that does not compile is reported before its container starts, with file, line and
 * column: compiled (never run) by the host's python3 when it is the image's version, else by the
 * image's own python3 in a container with nothing (no network, no capabilities).
 *
 * The sources are the agent's, so the check is bounded like anything else the host does with them:
 * each file at most MAX_CHECKED_FILE_BYTES, the checker's address space CHECK_MEMORY_BYTES and its
 * CPU time CHECK_CPU_SECONDS (set by the checker on itself before it reads a byte), its wall time and
 * its output. A checker that crashes, is killed, runs out of time or says nothing is an error of the
 * run, never a pass.
 */
import { execa } from "execa";
import type Docker from "dockerode";
import { basename, join, relative } from "node:path";
import { AgentSourceError } from "../../errors.js";
import { runOneOff } from "../../backends/docker/engine/one-off.js";
import type { BuiltImage } from "../../images/images.js";
import { pythonVersionOf } from "./image.js";
import type { StagedPython } from "./stage.js";

/**
 * Compiles the entry (argv[2], under the root argv[1]) and, as far as their imports reach, the local
 * modules it imports; prints a JSON list of the syntax errors. Nothing is executed.
 */
export const MAX_CHECKED_FILE_BYTES = 4 * 1024 * 1024;
export const CHECK_MEMORY_BYTES = 1024 * 1024 * 1024;
export const CHECK_CPU_SECONDS = 20;
const CHECK_WALL_MS = 30_000;

// biome-ignore lint/complexity/noUselessStringRaw: Python source: a backslash added to it later must reach Python as written
export const COMPILE_CHECK = String.raw`
import ast, json, os, sys
try:
    import resource
    resource.setrlimit(resource.RLIMIT_AS, (${CHECK_MEMORY_BYTES}, ${CHECK_MEMORY_BYTES}))
    resource.setrlimit(resource.RLIMIT_CPU, (${CHECK_CPU_SECONDS}, ${CHECK_CPU_SECONDS}))
except (ImportError, ValueError, OSError):
    pass
root, entry = sys.argv[1], sys.argv[2]
errors, seen, todo = [], set(), [entry]
def local(path):
    for p in (path + ".py", os.path.join(path, "__init__.py")):
        if os.path.isfile(p):
            return p
while todo:
    path = todo.pop()
    if path in seen:
        continue
    seen.add(path)
    size = os.path.getsize(path)
    if size > ${MAX_CHECKED_FILE_BYTES}:
        errors.append({"file": path, "line": 1, "column": 1, "message": "too large to check: %d bytes (at most ${MAX_CHECKED_FILE_BYTES})" % size, "text": ""})
        continue
    try:
        with open(path, "rb") as f:
            tree = compile(f.read(), path, "exec", flags=ast.PyCF_ONLY_AST, dont_inherit=True)
            compile(tree, path, "exec", dont_inherit=True)
    except SyntaxError as e:
        errors.append({"file": path, "line": e.lineno or 1, "column": e.offset or 1, "message": type(e).__name__ + ": " + str(e.msg), "text": (e.text or "").strip()})
        continue
    except (ValueError, RecursionError, MemoryError) as e:
        errors.append({"file": path, "line": 1, "column": 1, "message": "cannot compile: " + type(e).__name__ + (": " + str(e) if str(e) else ""), "text": ""})
        continue
    here = os.path.dirname(path)
    for node in ast.walk(tree):
        names = []
        if isinstance(node, ast.Import):
            names = [(root, a.name) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = root
            if node.level:
                base = here
                for _ in range(node.level - 1):
                    base = os.path.dirname(base)
            mod = node.module or ""
            names = [(base, mod)] + [(base, (mod + "." if mod else "") + a.name) for a in node.names]
        for base, name in names:
            parts = [p for p in name.split(".") if p]
            for i in range(1, len(parts) + 1):
                found = local(os.path.join(base, *parts[:i]))
                if found:
                    todo.append(found)
print(json.dumps(errors[:20]))
`;

interface CompileError {
  file: string;
  line: number;
  column: number;
  message: string;
  text: string;
}

let hostPython: Promise<{ executable: string; version: string } | undefined> | undefined;

/** The host's python3 (the interpreter itself, not a wrapper such as pyenv's shim) and its version; asked once. */
function hostPythonOnce(): Promise<{ executable: string; version: string } | undefined> {
  hostPython ??= execa(
    "python3",
    ["-I", "-c", "import sys; print(sys.executable); print('%d.%d' % sys.version_info[:2])"],
    { reject: false, timeout: 10_000 },
  ).then(
    (r) => {
      const [executable, version] = r.stdout.trim().split("\n");
      return r.exitCode === 0 && executable && version ? { executable, version } : undefined;
    },
    () => undefined,
  );
  return hostPython;
}

export async function checkPythonSyntax(
  docker: Docker,
  image: BuiltImage,
  staged: StagedPython,
  bundleDir: string,
): Promise<void> {
  const [imageVersion, host] = await Promise.all([pythonVersionOf(docker, image), hostPythonOnce()]);
  let errors: CompileError[];
  if (host?.version === imageVersion) {
    // The copies in the bundle folder, named back to the user's files. -S: the check needs no site-packages (and starts in ~10 ms).
    const run = await execa(
      host.executable,
      ["-I", "-S", "-c", COMPILE_CHECK, bundleDir, join(bundleDir, basename(staged.entry))],
      { reject: false, timeout: CHECK_WALL_MS, maxBuffer: 1024 * 1024 },
    );
    const why = run.timedOut
      ? `it ran past ${CHECK_WALL_MS / 1000} s`
      : run.signal
        ? `it was killed (${run.signal}${run.signal === "SIGXCPU" || run.signal === "SIGKILL" ? `: past ${CHECK_CPU_SECONDS} s of CPU` : ""})`
        : run.exitCode !== 0
          ? `it failed (exit ${run.exitCode}: ${lastLine(run.stderr)})`
          : undefined;
    errors = checked(staged, why, run.stdout).map((e) => ({
      ...e,
      file: staged.files.find((f) => f.staged === e.file)?.host ?? e.file,
    }));
  } else {
    const run = await runOneOff(docker, {
      image: image.id,
      cmd: ["python3", "-I", "-S", "-c", COMPILE_CHECK, "/opt/agent/run", staged.entry],
      binds: [`${bundleDir}:/opt/agent/run:ro`],
      timeoutMs: CHECK_WALL_MS,
    });
    const why =
      run.code !== 0
        ? `it failed (exit ${run.code}${run.code === 137 ? ": out of memory or time" : ""}: ${lastLine(run.stderr)})`
        : undefined;
    errors = checked(staged, why, run.stdout).map((e) => ({
      ...e,
      file: staged.files.find((f) => `/opt/agent/run/${relative(bundleDir, f.staged)}` === e.file)?.host ?? e.file,
    }));
  }
  const first = errors[0];
  if (!first) return;
  const where = `${relative(process.cwd(), first.file) || first.file}:${first.line}:${first.column}`;
  const more =
    errors.length > 1 ? ` (and ${errors.length - 1} more file${errors.length > 2 ? "s" : ""} with errors)` : "";
  throw new AgentSourceError(
    where,
    `${first.message}${first.text ? `: ${first.text}` : ""}${more}`,
    `fix the error above (Python ${imageVersion}, the image's); the agent did not start`,
  );
}

const lastLine = (text: string) => text.trim().split("\n").pop()?.slice(0, 200) || "no message";

/**
 * The checker's errors; a checker that did not finish (`why`) or printed no list is an error of the
 * run, never a pass.
 */
function checked(staged: StagedPython, why: string | undefined, stdout: string): CompileError[] {
  const entry = staged.files.find((f) => basename(f.staged) === basename(staged.entry))?.host ?? staged.entry;
  const failed = (reason: string): CompileError[] => [
    { file: entry, line: 1, column: 1, message: `the syntax check did not finish: ${reason}`, text: "" },
  ];
  if (why)
    return failed(
      `${why}; the check is bounded to ${CHECK_MEMORY_BYTES / 1024 / 1024} MiB of memory and ${CHECK_CPU_SECONDS} s of CPU`,
    );
  try {
    const value = JSON.parse(stdout.trim().split("\n").pop() ?? "") as CompileError[];
    if (Array.isArray(value)) return value;
  } catch {
    // below
  }
  return failed("it printed no result");
}
