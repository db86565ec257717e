/**
 * The certificates of the egress proxy's terminating mode, checked by Node's own X.509 parser: a CA
 * and a server certificate it signed, many times over (a serial number that is not minimal DER makes
 * OpenSSL refuse the whole certificate, once in a few hundred random serials if it is not guarded).
 */
import { X509Certificate } from "node:crypto";
import { createSecureContext } from "node:tls";
import { describe, expect, it } from "vitest";
import { issueCertificate, newKeyPair } from "../../runner/gate/https/certificate.js";

describe("egress CA certificates", () => {
  it("issues certificates that parse, verify and load, every time", () => {
    const ca = newKeyPair();
    const issuer = { commonName: "test CA", ...ca };
    const now = Date.now();
    const window = { notBefore: new Date(now - 60_000), notAfter: new Date(now + 3600_000) };
    const caPem = issueCertificate({ commonName: "test CA", ca: true, publicKey: ca.publicKey, issuer, ...window });
    const caCert = new X509Certificate(caPem);
    expect(caCert.ca).toBe(true);
    const leaf = newKeyPair();
    const key = leaf.privateKey.export({ type: "pkcs8", format: "pem" });
    for (let i = 0; i < 1000; i++) {
      const pem = issueCertificate({
        commonName: "api.model.test",
        dnsNames: ["api.model.test"],
        ca: false,
        publicKey: leaf.publicKey,
        issuer,
        ...window,
      });
      const cert = new X509Certificate(pem);
      expect(cert.verify(caCert.publicKey)).toBe(true);
      expect(cert.checkHost("api.model.test")).toBe("api.model.test");
      expect(/^[4-7]/.test(cert.serialNumber)).toBe(true);
      if (i % 100 === 0) createSecureContext({ cert: pem, key });
    }
  });
});
