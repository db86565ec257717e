/**
 * Real TLS servers for the HTTPS-by-name tests: a test CA and a leaf certificate made with the
 * openssl command line (as a user would make a test chain), and HTTPS servers on loopback
 * addresses that answer with who they are, the name the client asked for (SNI) and its Host header.
 */
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { createServer, type Server } from "node:https";
import type { AddressInfo, Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { TLSSocket } from "node:tls";

export interface TestChain {
  ca: string;
  key: string;
  cert: string;
}

/** A CA, and a certificate it signed for `names` (wildcards allowed). */
export function testChain(names: string[], subject = "airlock test CA"): TestChain {
  const dir = mkdtempSync(join(tmpdir(), "airlock-tls-"));
  const at = (f: string) => join(dir, f);
  const openssl = (...args: string[]) => execFileSync("openssl", args, { stdio: "pipe" });
  openssl(
    "req",
    "-x509",
    "-newkey",
    "ec",
    "-pkeyopt",
    "ec_paramgen_curve:prime256v1",
    "-nodes",
    "-keyout",
    at("ca.key"),
    "-out",
    at("ca.pem"),
    "-days",
    "2",
    "-subj",
    `/CN=${subject}`,
    "-addext",
    "basicConstraints=critical,CA:TRUE",
    "-addext",
    "keyUsage=critical,keyCertSign,cRLSign",
  );
  writeFileSync(
    at("leaf.ext"),
    `subjectAltName=${names.map((n) => `DNS:${n}`).join(",")}\nextendedKeyUsage=serverAuth\n`,
  );
  openssl(
    "req",
    "-newkey",
    "ec",
    "-pkeyopt",
    "ec_paramgen_curve:prime256v1",
    "-nodes",
    "-keyout",
    at("leaf.key"),
    "-out",
    at("leaf.csr"),
    "-subj",
    `/CN=${names[0]}`,
  );
  openssl(
    "x509",
    "-req",
    "-in",
    at("leaf.csr"),
    "-CA",
    at("ca.pem"),
    "-CAkey",
    at("ca.key"),
    "-CAcreateserial",
    "-out",
    at("leaf.pem"),
    "-days",
    "2",
    "-extfile",
    at("leaf.ext"),
  );
  return {
    ca: readFileSync(at("ca.pem"), "utf8"),
    key: readFileSync(at("leaf.key"), "utf8"),
    cert: readFileSync(at("leaf.pem"), "utf8"),
  };
}

export interface SeenRequest {
  server: string;
  sni: string | false | null;
  host: string | undefined;
  authorization: string | undefined;
}

export interface NamedServer {
  address: string;
  port: number;
  /** Every request it answered. */
  seen: SeenRequest[];
  close(): Promise<void>;
}

/** An HTTPS server on `address` (port 0: a free one) that answers `<label> sni=<name> host=<Host>`. */
export async function namedServer(label: string, address: string, chain: TestChain, port = 0): Promise<NamedServer> {
  const seen: SeenRequest[] = [];
  const sockets = new Set<Socket>();
  const server: Server = createServer({ key: chain.key, cert: chain.cert }, (req, res) => {
    const sni = (req.socket as TLSSocket).servername;
    seen.push({ server: label, sni, host: req.headers.host, authorization: req.headers.authorization });
    res.setHeader("Content-Type", "text/plain");
    res.end(`${label} sni=${sni || "-"} host=${req.headers.host ?? "-"}\n`);
  });
  server.on("connection", (s: Socket) => {
    sockets.add(s);
    s.on("close", () => sockets.delete(s));
  });
  // A client that gives up mid-handshake is not the server's failure.
  server.on("tlsClientError", () => {});
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, address, () => resolve());
  });
  return {
    address,
    port: (server.address() as AddressInfo).port,
    seen,
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
}
