/** Streams 100 sensor events to a Kafka topic, in batches of 10. */
import { defineAgent } from "airlock/agent";

export default defineAgent(async (ctx) => {
  const topic = `agent-events-${ctx.env.AIRLOCK_GROUP_RUN_ID ?? "default"}`;
  const stream = ctx.bus.stream<{ id: number; type: string; value: number; timestamp: number }>(topic);
  for (let batch = 0; batch < 10; batch++) {
    await stream.produce(
      Array.from({ length: 10 }, (_, i) => ({
        id: batch * 10 + i,
        type: "sensor_reading",
        value: (batch * 10 + i) * 1.5,
        timestamp: Date.now(),
      })),
    );
    ctx.log(`sent ${(batch + 1) * 10} events`);
  }
  await ctx.output.write("summary.txt", `Sent 100 events to ${topic}\n`);
  return { sent: 100 };
});
