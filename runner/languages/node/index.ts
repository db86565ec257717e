/** Agents in TypeScript or JavaScript: bundled on the host with esbuild, run by the Node agent runtime. */
import type { AgentLanguage } from "../language.js";
import { bundleAgent } from "./bundle.js";
import { typecheckAgent } from "./typecheck.js";
import { ensureNpmPackagesImage } from "./packages-image.js";

export const NODE_EXTENSIONS = [".ts", ".mts", ".cts", ".js", ".mjs", ".cjs"] as const;

export const nodeLanguage: AgentLanguage = {
  name: "node",
  title: "TypeScript/JavaScript",
  extensions: NODE_EXTENSIONS,
  async stage(agentFile, policy, bundleDir, options) {
    // The type check (when asked for) beside the bundling; either failing stops the run before its start.
    await Promise.all([
      bundleAgent(agentFile, policy, bundleDir),
      options?.typecheck && /\.[mc]?ts$/.test(agentFile) ? typecheckAgent(agentFile) : undefined,
    ]);
    return { entry: "/opt/agent/run/agent.mjs" };
  },
  image: ({ docker, images, progress, builds }, policy) =>
    ensureNpmPackagesImage(docker, { tag: images.agent, id: images.ids.agent }, policy.packages.npm, progress, builds),
  runtimeArgv: ["node", "/opt/airlock/dist/bootstrap.js"],
  // NODE_ENV is read when the agent runs; the others (NODE_OPTIONS, ...) as Node starts.
  standby: {
    argv: ["node", "/opt/airlock/dist/standby.js"],
    startupVariables: /^(NODE_(?!ENV$)\w+|UV_\w+|LD_\w+|MALLOC_\w+|OPENSSL_\w+)$/,
  },
  hasPackages: (policy) => policy.packages.npm.length > 0,
};
