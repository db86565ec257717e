/**
 * Mosquitto's dynamic-security control topic, over the runner's admin login: one batch of commands
 * in one message to $CONTROL/dynamic-security/v1, the broker's answers read from .../response. A
 * command the broker refuses (a name that exists, a role that does not) fails the whole call with
 * the broker's own words.
 */

export interface MqttAdmin {
  /** mqtt://host:port */
  url: string;
  user: string;
  password: string;
  source: string;
  /** A Mosquitto log at debug level (AIRLOCK_MQTT_LOG), where refused publishes are written. */
  log?: string;
}

const CONTROL = "$CONTROL/dynamic-security/v1";

interface DynsecResponse {
  command: string;
  error?: string;
  data?: unknown;
}

/** Run the commands in order; resolves with each one's data. */
export async function dynsec(admin: MqttAdmin, commands: Record<string, unknown>[]): Promise<unknown[]> {
  // Loaded when first needed: the mqtt client is a large import the CLI's other commands never use.
  const { connectAsync } = await import("mqtt");
  const client = await connectAsync(admin.url, {
    username: admin.user,
    password: admin.password,
    protocolVersion: 5,
    connectTimeout: 5000,
    reconnectPeriod: 0,
    clean: true,
  });
  try {
    await client.subscribeAsync(`${CONTROL}/response`, { qos: 1 });
    const answer = new Promise<DynsecResponse[]>((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error("Mosquitto's dynamic-security plugin did not answer within 5 s (is it loaded?)")),
        5000,
      );
      client.on("message", (_topic, payload) => {
        clearTimeout(timer);
        resolve((JSON.parse(payload.toString()) as { responses?: DynsecResponse[] }).responses ?? []);
      });
    });
    await client.publishAsync(CONTROL, JSON.stringify({ commands }), { qos: 1 });
    const responses = await answer;
    const failed = responses.find((r) => r.error);
    if (failed) throw new Error(`${failed.command}: ${failed.error}`);
    return responses.map((r) => r.data);
  } finally {
    // The answers are in; a connection that does not close cleanly changes nothing.
    await client.endAsync().catch(() => {});
  }
}
