/** Throws from a function of its own: the stack trace must name this file and line, not the bundle. */
import { defineAgent } from "airlock/agent";

function parse(text: string): number {
  throw new Error(`cannot parse ${text}`); // line 5
}

export default defineAgent(async () => parse("x"));
