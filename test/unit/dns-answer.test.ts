/**
 * The DNS answers for HTTPS services by name, asked by a real resolver (Node's c-ares, pointed at a
 * UDP socket on loopback that the test serves with `answerDnsQuery`): listed names and one wildcard
 * label get the proxy's address, everything else NXDOMAIN, and nothing is forwarded anywhere.
 */
import { createSocket } from "node:dgram";
import { Resolver } from "node:dns/promises";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { answerDnsQuery } from "../../runner/gate/https/dns-answer.js";

describe("DNS answers for HTTPS services by name", () => {
  const listed = [{ host: "api.model.test" }, { host: "*.blob.example.com" }];
  const refused: string[] = [];
  const server = createSocket("udp4");
  const resolver = new Resolver({ timeout: 500, tries: 1 });

  beforeAll(async () => {
    server.on("message", (msg, peer) => {
      const out = answerDnsQuery(msg, listed, "127.0.0.2");
      if (out.refused) refused.push(out.refused);
      if (out.reply) server.send(out.reply, peer.port, peer.address);
    });
    await new Promise<void>((r) => server.bind(0, "127.0.0.1", r));
    resolver.setServers([`127.0.0.1:${server.address().port}`]);
  });

  afterAll(() => server.close());

  it("answers a listed name and one label under a wildcard with the proxy's address", async () => {
    expect(await resolver.resolve4("api.model.test")).toEqual(["127.0.0.2"]);
    expect(await resolver.resolve4("API.Model.Test")).toEqual(["127.0.0.2"]);
    expect(await resolver.resolve4("x1.blob.example.com")).toEqual(["127.0.0.2"]);
  });

  it("says NXDOMAIN at once for anything else, and reports it", async () => {
    for (const name of ["evil.test", "a.b.blob.example.com", "blob.example.com", "secret-data.evil.test"]) {
      await expect(resolver.resolve4(name)).rejects.toMatchObject({ code: "ENOTFOUND" });
    }
    expect(refused).toContain("secret-data.evil.test is not a listed HTTPS service");
  });

  it("gives IPv6 questions no data, so clients use IPv4 at once", async () => {
    await expect(resolver.resolve6("api.model.test")).rejects.toMatchObject({ code: "ENODATA" });
  });

  it("does not answer what is not one well-formed question", () => {
    expect(answerDnsQuery(Buffer.alloc(5), listed, "127.0.0.2").reply).toBeUndefined();
    const response = Buffer.alloc(17);
    response.writeUInt16BE(0x8000, 2);
    expect(answerDnsQuery(response, listed, "127.0.0.2").reply).toBeUndefined();
    expect(answerDnsQuery(Buffer.alloc(600), listed, "127.0.0.2").reply).toBeUndefined();
    // A name whose label runs past the packet: a format error, never a read past its end.
    const lying = Buffer.concat([Buffer.from([0, 1, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0]), Buffer.from([60, 97, 98])]);
    const formErr = answerDnsQuery(lying, listed, "127.0.0.2").reply;
    expect(formErr && formErr.readUInt16BE(2) & 0xf).toBe(1);
  });
});
