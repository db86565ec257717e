/**
 * airlock/agent: the API agent code is written against.
 *
 *   import { defineAgent } from "airlock/agent";
 *   export default defineAgent(async (ctx) => {
 *     ctx.log("hello from", ctx.name);
 *     await ctx.output.write("hello.txt", "hi\n");
 *     return { greeted: true };        // saved in the run's result
 *   });
 */
import type { AgentContext } from "./context.js";

export type { AgentContext, AgentOutput, AgentLogger } from "./context.js";
export { denials, type Refusal } from "./denials.js";
export * from "./bus/index.js";

const AGENT = Symbol.for("airlock.agent");

export type AgentFunction<R = unknown> = (ctx: AgentContext) => R | Promise<R>;

export interface AgentDefinition<R = unknown> {
  readonly [AGENT]: true;
  readonly run: AgentFunction<R>;
}

export function defineAgent<R>(run: AgentFunction<R>): AgentDefinition<R> {
  if (typeof run !== "function") throw new TypeError("defineAgent() takes an async function (ctx) => { ... }");
  return { [AGENT]: true, run };
}

export function isAgentDefinition(value: unknown): value is AgentDefinition {
  return typeof value === "object" && value !== null && (value as Record<symbol, unknown>)[AGENT] === true;
}
