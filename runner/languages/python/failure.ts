/**
 * What a failed Python agent's stderr means, in terms of its policy: a module it imports that is not
 * installed (named, with the policy line that installs it), the Isolated Agents SDK's own module
 * (airlock replaces it), and a broker that refused the agent (with what the policy or the code needs).
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
  if (!missing) return explainBrokerRefusal(stderr, policy);
  if (/^isolated_agents(_sdk)?$/.test(missing.split(".")[0]!)) {
    return `the agent imports "${missing}", the Isolated Agents SDK's module, which airlock replaces: inside the sandbox use \`import airlock\` (\`@airlock.agent\` on the agent function, which gets ctx: ctx.env, ctx.output, ctx.bus), and run it with npx airlock run (README: "Coming from the Python Isolated Agents SDK")`;
  }
  const top = missing.split(".")[0]!;
  const dist = DISTRIBUTIONS[top] ?? top;
  const where = policy.packages.pipFile
    ? `${policy.packages.pipFile} (the policy's packages.pip)`
    : `packages.pip in ${policy.source}`;
  const example = dist.includes(" ") ? dist : `${dist}==<version>`;
  return `the agent imports "${missing}", which is not installed in its image: add ${example} to ${where}`;
}

/** A broker that refused the agent: the policy line (or the code) that would let it in. */
function explainBrokerRefusal(stderr: string, policy: Policy): string | undefined {
  const has = (kind: string) => policy.bus.grants.some((g) => g.kind === kind);
  if (/AuthenticationError|NOAUTH|WRONGPASS|invalid username-password pair/.test(stderr)) {
    return has("redis")
      ? "Redis refused the login: connect with REDIS_URL exactly as the runner sets it (it carries this run's own user), not a URL of your own"
      : `Redis requires a login, and airlock's local Redis gives each run a user of its own: add bus: { redis: {} } (and the keys or channels it uses) to ${policy.source}, and connect with REDIS_URL; passing REDIS_URL through env gives no credentials`;
  }
  if (/ACCESS_REFUSED[^\n]*exchange 'amq\.default'/.test(stderr)) {
    return `RabbitMQ refused a publish on the default exchange: under bus rights the run publishes through its own exchange, exchange=os.environ["AIRLOCK_AMQP_EXCHANGE"] (with mandatory=True), to a queue listed in bus.rabbitmq.queues.publish in ${policy.source}`;
  }
  if (/ACCESS_REFUSED[^\n]*access to queue/.test(stderr)) {
    return `RabbitMQ refused to let the agent declare (configure) a queue: the runner declares the queues the policy names, so check them with queue_declare(queue=..., durable=True, passive=True); a queue outside bus.rabbitmq.queues in ${policy.source} must be added there`;
  }
  if (/ACCESS_REFUSED|NOT_ALLOWED - access|Login was refused/.test(stderr) && !has("rabbitmq")) {
    return `RabbitMQ refused the login: airlock's local RabbitMQ gives each run a user of its own: add bus: { rabbitmq: { queues: { ... } } } to ${policy.source}, and connect with AMQP_URL`;
  }
  return undefined;
}
