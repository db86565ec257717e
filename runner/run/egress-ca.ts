/**
 * airlock's CA for the egress proxy's terminating mode, one per runner, held in the runner's memory
 * only: its private key is never written anywhere, so it is never in a container, a state folder or
 * a backup. Agents of a run that terminates trust its certificate (a file the run mounts), and the
 * proxy presents a certificate it signed for each listed name it terminates.
 *
 * Rotation: a CA is valid for CA_DAYS; a run that starts when the current one has less than a day
 * left gets a new one (runs in progress keep theirs). A new runner process always has a new CA.
 */
import { createSecureContext, type SecureContext } from "node:tls";
import { issueCertificate, newKeyPair, type KeyPair } from "../gate/https/certificate.js";

const DAY_MS = 24 * 3600 * 1000;
export const CA_DAYS = 7;
/** Certificates the proxy presents: valid from an hour ago (clock skew) for two days. */
const LEAF_MS = 2 * DAY_MS;

/** One CA, as a run uses it from its start to its end. */
export interface Authority {
  /** The CA's certificate (PEM): what the agent trusts. */
  readonly certificate: string;
  readonly notAfter: Date;
  /** A TLS context presenting a certificate for `name`, signed by this CA (made once per name). */
  contextFor(name: string): SecureContext;
}

export class EgressCa {
  private current?: Authority;

  constructor(private readonly now: () => number = Date.now) {}

  /** The CA in use, or a new one when there is none or it ends within a day. */
  authority(): Authority {
    if (!this.current || this.current.notAfter.getTime() - this.now() < DAY_MS) this.current = this.create();
    return this.current;
  }

  private create(): Authority {
    const keys = newKeyPair();
    const now = this.now();
    const commonName = `airlock egress CA ${new Date(now).toISOString().slice(0, 19)}`;
    const notAfter = new Date(now + CA_DAYS * DAY_MS);
    const issuer = { commonName, ...keys };
    const certificate = issueCertificate({
      commonName,
      ca: true,
      notBefore: new Date(now - 3600_000),
      notAfter,
      publicKey: keys.publicKey,
      issuer,
    });
    return new IssuingAuthority(certificate, notAfter, issuer, this.now);
  }
}

class IssuingAuthority implements Authority {
  private readonly contexts = new Map<string, SecureContext>();
  private readonly leafKeys: KeyPair = newKeyPair();

  constructor(
    readonly certificate: string,
    readonly notAfter: Date,
    private readonly issuer: { commonName: string } & KeyPair,
    private readonly now: () => number,
  ) {}

  contextFor(name: string): SecureContext {
    let context = this.contexts.get(name);
    if (!context) {
      const now = this.now();
      const cert = issueCertificate({
        commonName: name,
        dnsNames: [name],
        ca: false,
        notBefore: new Date(now - 3600_000),
        notAfter: new Date(Math.min(now + LEAF_MS, this.notAfter.getTime())),
        publicKey: this.leafKeys.publicKey,
        issuer: this.issuer,
      });
      context = createSecureContext({
        cert: cert + this.certificate,
        key: this.leafKeys.privateKey.export({ type: "pkcs8", format: "pem" }),
      });
      // Names are the policy's (a wildcard's are one label each): bounded by what a run may ask for.
      if (this.contexts.size > 10_000) this.contexts.clear();
      this.contexts.set(name, context);
    }
    return context;
  }
}
