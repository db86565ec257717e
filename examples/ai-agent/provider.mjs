/**
 * A stand-in for a model provider's chat-completions API, so the AI agent example runs with no
 * account and no internet: HTTPS on 127.0.0.1:8443 with a real certificate chain (a test CA made
 * here with openssl, in the temp folder), `POST /v1/chat/completions` answering as OpenAI-compatible
 * APIs do — all at once, or token by token as server-sent events with `"stream": true` — and only
 * to a request carrying `Authorization: Bearer <EXAMPLE_MODEL_KEY>`.
 *
 *   node examples/ai-agent/provider.mjs      # prints the CA file to trust, then serves
 */
import { execFileSync } from "node:child_process";
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { createServer } from "node:https";
import { tmpdir } from "node:os";
import { join } from "node:path";

export const PORT = Number(process.env.EXAMPLE_PROVIDER_PORT ?? 8443);

/** A test CA and a certificate for localhost, made once (openssl) and kept in the temp folder. */
export function providerChain(dir = join(tmpdir(), "airlock-example-provider")) {
  const at = (f) => join(dir, f);
  if (!existsSync(at("server.pem"))) {
    mkdirSync(dir, { recursive: true });
    const openssl = (...args) => execFileSync("openssl", args, { stdio: "pipe" });
    const ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"];
    openssl("req", "-x509", ...ec, "-keyout", at("ca.key"), "-out", at("ca.pem"), "-days", "30", "-subj", "/CN=example provider test CA", "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign");
    openssl("req", ...ec, "-keyout", at("server.key"), "-out", at("server.csr"), "-subj", "/CN=localhost");
    writeFileSync(at("server.ext"), "subjectAltName=DNS:localhost\nextendedKeyUsage=serverAuth\n");
    openssl("x509", "-req", "-in", at("server.csr"), "-CA", at("ca.pem"), "-CAkey", at("ca.key"), "-CAcreateserial", "-out", at("server.pem"), "-days", "30", "-extfile", at("server.ext"));
  }
  return { caFile: at("ca.pem"), key: readFileSync(at("server.key")), cert: readFileSync(at("server.pem")) };
}

/** Start the provider; resolves with its close(). */
export async function startProvider({ key = process.env.EXAMPLE_MODEL_KEY, port = PORT } = {}) {
  if (!key) throw new Error("set EXAMPLE_MODEL_KEY: the provider answers only requests that carry it");
  const chain = providerChain();
  const server = createServer({ key: chain.key, cert: chain.cert }, (req, res) => {
    if (req.method !== "POST" || req.url !== "/v1/chat/completions") {
      res.writeHead(404).end();
      return;
    }
    if (req.headers.authorization !== `Bearer ${key}`) {
      res.writeHead(401, { "content-type": "application/json" });
      res.end(JSON.stringify({ error: { message: "missing or wrong API key" } }));
      return;
    }
    let body = "";
    req.on("data", (d) => {
      body += d;
    });
    req.on("end", () => {
      const ask = JSON.parse(body || "{}");
      const question = ask.messages?.at(-1)?.content ?? "";
      const answer = `You asked: "${question}". The answer is 42.`;
      if (!ask.stream) {
        res.writeHead(200, { "content-type": "application/json" });
        res.end(JSON.stringify({ id: "chatcmpl-example", object: "chat.completion", model: ask.model, choices: [{ index: 0, message: { role: "assistant", content: answer }, finish_reason: "stop" }] }));
        return;
      }
      res.writeHead(200, { "content-type": "text/event-stream", "cache-control": "no-cache" });
      const tokens = answer.split(/(?<= )/);
      let i = 0;
      const next = () => {
        if (i === tokens.length) {
          res.end("data: [DONE]\n\n");
          return;
        }
        res.write(`data: ${JSON.stringify({ object: "chat.completion.chunk", choices: [{ index: 0, delta: { content: tokens[i++] } }] })}\n\n`);
        setTimeout(next, 20);
      };
      next();
    });
  });
  await new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, "127.0.0.1", resolve);
  });
  return { caFile: chain.caFile, close: () => new Promise((r) => server.close(r)) };
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const { caFile } = await startProvider();
  console.log(`provider on https://localhost:${PORT} (trust ${caFile})`);
}
