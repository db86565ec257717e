/** Agents in Python: copied as source, compiled before the start, run by the Python agent runtime (`import airlock`). */
import type { AgentLanguage } from "../language.js";
import { explainPythonFailure } from "./failure.js";
import { ensurePipPackagesImage, ensurePythonImage } from "./image.js";
import { stagePython } from "./stage.js";
import { checkPythonSyntax } from "./syntax.js";

export const pythonLanguage: AgentLanguage = {
  name: "python",
  title: "Python",
  extensions: [".py"],
  async stage(agentFile, _policy, bundleDir) {
    const staged = await stagePython(agentFile, bundleDir);
    return { entry: staged.entry, check: ({ docker }, image) => checkPythonSyntax(docker, image, staged, bundleDir) };
  },
  async image({ docker, images, progress, builds }, policy) {
    const python = await ensurePythonImage(docker, images, progress, builds);
    return ensurePipPackagesImage(docker, python, policy.packages.pip, policy.source, progress, builds);
  },
  runtimeArgv: ["python3", "-m", "airlock._bootstrap"],
  standby: { argv: ["python3", "-m", "airlock._standby"], startupVariables: /^(PYTHON\w+|LD_\w+|MALLOC_\w+)$/ },
  explainFailure: explainPythonFailure,
  hasPackages: (policy) => policy.packages.pip.length > 0,
};
