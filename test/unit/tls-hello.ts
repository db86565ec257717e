/** Real ClientHellos for tests: what Node's OpenSSL client sends first, captured by a server on loopback. */
import { createServer, type AddressInfo } from "node:net";
import { connect as tlsConnect } from "node:tls";
import { readClientHello } from "../../runner/gate/https/client-hello.js";

/** The first bytes a real TLS client sends to `host` (as SNI when it is a name) with these ALPN protocols. */
export async function realHello(servername: string | undefined, alpn: string[] = []): Promise<Buffer> {
  const server = createServer();
  const first = new Promise<Buffer>((resolve) =>
    server.once("connection", (socket) => {
      let got = Buffer.alloc(0);
      socket.on("data", (d: Buffer) => {
        got = Buffer.concat([got, d]);
        const read = readClientHello(got);
        if (read.state !== "partial") {
          resolve(got);
          socket.destroy();
        }
      });
    }),
  );
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const { port } = server.address() as AddressInfo;
  const client = tlsConnect({
    host: "127.0.0.1",
    port,
    ...(servername ? { servername } : {}),
    ALPNProtocols: alpn,
    rejectUnauthorized: false,
  });
  // The capture server hangs up after the hello: the client's error is expected.
  client.on("error", () => {});
  try {
    return await first;
  } finally {
    client.destroy();
    server.close();
  }
}
