/**
 * Agents are bundled on the host with esbuild before any container starts: TypeScript compiles,
 * relative imports are inlined, and a compile error or an import of a package the policy does not
 * list is reported with file, line and fix. Packages from the policy, `airlock/agent` and Node's
 * built-ins stay external; the image provides them.
 */
import { builtinModules } from "node:module";
import { writeFile } from "node:fs/promises";
import { dirname, join, relative, resolve } from "node:path";
import type { Message, Plugin } from "esbuild";
import { AgentSourceError } from "../../errors.js";
import type { Policy } from "../../policy/index.js";
import { checkAgentFile } from "../agent-file.js";

const BUILTINS = new Set(builtinModules);

export function packageNameOf(specifier: string): string {
  const parts = specifier.split("/");
  return specifier.startsWith("@") ? parts.slice(0, 2).join("/") : parts[0]!;
}

function policyImports(policy: Policy): Plugin {
  const allowed = new Set(policy.packages.npm.map((p) => p.name));
  return {
    name: "airlock-policy-imports",
    setup(b) {
      b.onResolve({ filter: /^[^./]/ }, (args) => {
        if (args.path.startsWith("node:") || BUILTINS.has(args.path) || BUILTINS.has(packageNameOf(args.path)))
          return { path: args.path, external: true };
        if (args.path === "airlock/agent" || args.path === "airlock") return { path: "airlock/agent", external: true };
        const name = packageNameOf(args.path);
        if (allowed.has(name)) return { path: args.path, external: true };
        return {
          errors: [
            {
              text: `imports "${name}", which the policy (${policy.source}) does not list in packages`,
              detail: `add it to packages${policy.packages.pip.length ? ".npm" : ""} in ${policy.source}, e.g. - ${name}@<version>`,
            },
          ],
        };
      });
    },
  };
}

/** Bundle `agentFile` into `outDir/agent.mjs`; returns its path. */
export async function bundleAgent(agentFile: string, policy: Policy, outDir: string): Promise<string> {
  await checkAgentFile(agentFile);
  const outfile = join(outDir, "agent.mjs");
  try {
    // Loaded when first needed (the CLI's other commands never bundle).
    const { build } = await import("esbuild");
    const result = await build({
      entryPoints: [agentFile],
      // Named as if beside the agent (nothing is written there: write is off), so that the source
      // map names the user's files relative to the agent's folder ("producer.ts", "lib/x.ts"), and a
      // stack trace in the container reads /opt/agent/run/producer.ts:7:9, never the host's paths.
      outfile: join(dirname(resolve(agentFile)), "agent.mjs"),
      bundle: true,
      platform: "node",
      format: "esm",
      target: "node20",
      sourcemap: "inline",
      logLevel: "silent",
      write: false,
      plugins: [policyImports(policy)],
      // Bundled CommonJS code may call require(); give it one.
      banner: {
        js: 'import { createRequire as __airlockRequire } from "node:module"; const require = __airlockRequire(import.meta.url);',
      },
    });
    const out = result.outputFiles[0];
    if (!out) throw new AgentSourceError(agentFile, "esbuild produced no output");
    await writeFile(outfile, out.contents, { mode: 0o644 });
    return outfile;
  } catch (err) {
    if (err instanceof AgentSourceError) throw err;
    const errors = (err as { errors?: Message[] }).errors;
    if (!errors?.length) throw new AgentSourceError(agentFile, `could not be compiled: ${(err as Error).message}`);
    const first = errors[0]!;
    const where = first.location
      ? `${relative(process.cwd(), first.location.file) || first.location.file}:${first.location.line}:${first.location.column + 1}`
      : agentFile;
    const more = errors.length > 1 ? ` (and ${errors.length - 1} more error${errors.length > 2 ? "s" : ""})` : "";
    const detail = typeof first.detail === "string" ? first.detail : undefined;
    throw new AgentSourceError(where, `${first.text}${more}`, detail ?? "fix the error above; the agent did not start");
  }
}
