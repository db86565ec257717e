/**
 * X.509 certificates for the egress proxy's terminating mode: airlock's own CA, and a certificate
 * for each listed name the proxy terminates, signed by it. ECDSA P-256 keys (node:crypto makes and
 * signs with them in well under a millisecond); the certificate structure is encoded with
 * @peculiar/asn1-x509 (the ASN.1 schemas of RFC 5280), never by hand. Pure: keys in, PEM out.
 */
import { AsnConvert, OctetString } from "@peculiar/asn1-schema";
import * as x509 from "@peculiar/asn1-x509";
import { createHash, generateKeyPairSync, randomBytes, sign, type KeyObject } from "node:crypto";

/** ecdsa-with-SHA256 (RFC 5758). */
const ECDSA_SHA256 = "1.2.840.10045.4.3.2";
const COMMON_NAME = "2.5.4.3";
const ORGANIZATION = "2.5.4.10";

export interface KeyPair {
  privateKey: KeyObject;
  publicKey: KeyObject;
}

export function newKeyPair(): KeyPair {
  return generateKeyPairSync("ec", { namedCurve: "P-256" });
}

export interface CertificateRequest {
  /** The subject's common name (a CA's name, or the host name). */
  commonName: string;
  /** Host names the certificate is for (none for a CA). */
  dnsNames?: string[];
  ca: boolean;
  notBefore: Date;
  notAfter: Date;
  /** The subject's key. */
  publicKey: KeyObject;
  /** Who signs: the CA's name and key (a CA signs itself: its own). */
  issuer: { commonName: string; publicKey: KeyObject; privateKey: KeyObject };
}

function name(commonName: string): x509.Name {
  const attribute = (type: string, value: string) =>
    new x509.RelativeDistinguishedName([
      new x509.AttributeTypeAndValue({ type, value: new x509.AttributeValue({ utf8String: value }) }),
    ]);
  return new x509.Name([attribute(ORGANIZATION, "airlock"), attribute(COMMON_NAME, commonName)]);
}

/** The key identifier of RFC 5280 §4.2.1.2 (1): SHA-1 of the public key's bits. */
function keyId(publicKey: KeyObject): ArrayBuffer {
  const spki = AsnConvert.parse(publicKey.export({ type: "spki", format: "der" }), x509.SubjectPublicKeyInfo);
  const digest = createHash("sha1").update(Buffer.from(spki.subjectPublicKey)).digest();
  return new Uint8Array(digest).buffer;
}

function extension(id: string, critical: boolean, value: unknown): x509.Extension {
  return new x509.Extension({ extnID: id, critical, extnValue: new OctetString(AsnConvert.serialize(value)) });
}

/** A certificate, signed by its issuer, as PEM. */
export function issueCertificate(r: CertificateRequest): string {
  const algorithm = new x509.AlgorithmIdentifier({ algorithm: ECDSA_SHA256 });
  const serial = randomBytes(16);
  // A positive integer in minimal DER: the top bit clear (positive), the next one set (no leading zero byte).
  serial[0] = (serial[0]! & 0x7f) | 0x40;
  const extensions = [
    extension(
      x509.id_ce_basicConstraints,
      true,
      new x509.BasicConstraints(r.ca ? { cA: true, pathLenConstraint: 0 } : {}),
    ),
    extension(
      x509.id_ce_keyUsage,
      true,
      new x509.KeyUsage(
        r.ca ? x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign : x509.KeyUsageFlags.digitalSignature,
      ),
    ),
    extension(x509.id_ce_subjectKeyIdentifier, false, new x509.SubjectKeyIdentifier(keyId(r.publicKey))),
    extension(
      x509.id_ce_authorityKeyIdentifier,
      false,
      new x509.AuthorityKeyIdentifier({ keyIdentifier: new x509.KeyIdentifier(keyId(r.issuer.publicKey)) }),
    ),
    ...(r.ca ? [] : [extension(x509.id_ce_extKeyUsage, false, new x509.ExtendedKeyUsage([x509.id_kp_serverAuth]))]),
    ...(r.dnsNames?.length
      ? [
          extension(
            x509.id_ce_subjectAltName,
            false,
            new x509.SubjectAlternativeName(r.dnsNames.map((dNSName) => new x509.GeneralName({ dNSName }))),
          ),
        ]
      : []),
  ];
  const tbs = new x509.TBSCertificate({
    version: x509.Version.v3,
    serialNumber: new Uint8Array(serial).buffer,
    signature: algorithm,
    issuer: name(r.issuer.commonName),
    validity: new x509.Validity({ notBefore: r.notBefore, notAfter: r.notAfter }),
    subject: name(r.commonName),
    subjectPublicKeyInfo: AsnConvert.parse(
      r.publicKey.export({ type: "spki", format: "der" }),
      x509.SubjectPublicKeyInfo,
    ),
    extensions: new x509.Extensions(extensions),
  });
  const signature = sign("sha256", Buffer.from(AsnConvert.serialize(tbs)), {
    key: r.issuer.privateKey,
    dsaEncoding: "der",
  });
  const certificate = new x509.Certificate({
    tbsCertificate: tbs,
    signatureAlgorithm: algorithm,
    signatureValue: new Uint8Array(signature).buffer,
  });
  const der = Buffer.from(AsnConvert.serialize(certificate)).toString("base64");
  return `-----BEGIN CERTIFICATE-----\n${der.match(/.{1,64}/g)!.join("\n")}\n-----END CERTIFICATE-----\n`;
}
