/**
 * What a failed Python agent's stderr means, in terms of its policy: a module it imports that is not
 * installed (named, with the policy line that installs it).
 */
import type { Policy } from "../../policy/index.js";

/** Import names whose distribution on the index is called something else. */
const DISTRIBUTIONS: Record<string, string> = {
  kafka: "kafka-python",
  yaml: "PyYAML",
  cv2: "opencv-python",
  PIL: "Pillow",
  sklearn: "scikit-learn",
  bs4: "beautifulsoup4",
  dateutil: "python-dateutil",
  dotenv: "python-dotenv",
  jwt: "PyJWT",
  nats: "nats-py",
  paho: "paho-mqtt",
  aio_pika: "aio-pika",
  google: "the Google package you use (e.g. google-cloud-storage)",
};

export function explainPythonFailure(stderr: string, policy: Policy): string | undefined {
  const missing = [...stderr.matchAll(/ModuleNotFoundError: No module named '([^']+)'/g)].pop()?.[1];
  if (!missing) return undefined;
  const top = missing.split(".")[0]!;
  const dist = DISTRIBUTIONS[top] ?? top;
  const where = policy.packages.pipFile ? `${policy.packages.pipFile} (the policy's packages.pip)` : `packages.pip in ${policy.source}`;
  const example = dist.includes(" ") ? dist : `${dist}==<version>`;
  return `the agent imports "${missing}", which is not installed in its image: add ${example} to ${where}`;
}
