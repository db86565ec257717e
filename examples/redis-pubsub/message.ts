import { z } from "zod";

/** The event both agents agree on; validated when published and when received. */
export const AgentEvent = z.object({
  id: z.number().int().nonnegative(),
  type: z.literal("task"),
  data: z.string(),
  timestamp: z.number(),
});
export type AgentEvent = z.infer<typeof AgentEvent>;

/** One channel per `airlock up`, so parallel runs on the same Redis do not hear each other. */
export function channelFor(env: Readonly<Record<string, string>>): string {
  return `agent-events:${env.AIRLOCK_GROUP_RUN_ID ?? "default"}`;
}
