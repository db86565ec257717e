/**
 * An AI agent: asks the model a question over its HTTPS API (streamed token by token, as model APIs
 * do) with plain `fetch`, and publishes the answer on the bus. It holds no API key: the policy lists
 * the API by name and the gate adds the key as the request leaves (asker.yaml).
 */
import { defineAgent } from "airlock/agent";

const API = process.env.MODEL_API_URL ?? "https://localhost:8443/v1/chat/completions";

export default defineAgent(async (ctx) => {
  const question = "What is six times seven?";
  const response = await fetch(API, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ model: "example-model", stream: true, messages: [{ role: "user", content: question }] }),
  });
  if (!response.ok) throw new Error(`the model API answered ${response.status}: ${await response.text()}`);
  // Server-sent events: one `data:` line per token, until [DONE].
  let answer = "";
  let tokens = 0;
  let buffered = "";
  for await (const chunk of response.body!.pipeThrough(new TextDecoderStream())) {
    buffered += chunk;
    const events = buffered.split("\n\n");
    buffered = events.pop()!;
    for (const event of events) {
      const data = event.replace(/^data: /, "");
      if (data === "[DONE]") continue;
      answer += JSON.parse(data).choices[0].delta.content ?? "";
      tokens++;
    }
  }
  ctx.log(`the model answered in ${tokens} tokens: ${answer}`);
  const channel = `answers:${ctx.env.AIRLOCK_GROUP_RUN_ID ?? "default"}`;
  await ctx.bus.pubsub(channel).publish({ question, answer, tokens });
  return { answer, tokens };
});
