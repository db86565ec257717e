/**
 * Sealed messages: signed and encrypted end to end, so the broker (and any agent that can read the
 * subject or topic) sees only who wrote to whom, when, and how much. Each agent generates its keys
 * inside its own container when it first asks for them: an Ed25519 pair to sign and an X25519 pair
 * to agree keys; only the public halves ever leave (through discovery cards, presence, or any
 * message). Sealing one message to a recipient:
 *
 *   ephemeral X25519 pair → shared = X25519(ephemeral, recipient) → key = HKDF-SHA256(shared, salt,
 *   "airlock-sealed-v1") → AES-256-GCM(key, iv, body, aad = header) → Ed25519 signature over
 *   header, iv and ciphertext, with the sender's signing key.
 *
 * Opening checks, in order: the recipient is this agent, the sender is known (its public keys were
 * trusted), the signature, the time window, that the id was not seen before (replay), and GCM's tag
 * (tampering). Everything is node:crypto; nothing here is a primitive of its own.
 */
import {
  createCipheriv,
  createDecipheriv,
  createPublicKey,
  diffieHellman,
  generateKeyPairSync,
  hkdfSync,
  randomBytes,
  randomUUID,
  sign,
  verify,
  type KeyObject,
} from "node:crypto";

export interface PublicKeys {
  agent: string;
  /** Ed25519, SPKI DER, base64. */
  sign: string;
  /** X25519, SPKI DER, base64. */
  agree: string;
}

/** What travels: the header in the clear (and signed), the body encrypted. */
export interface SealedMessage {
  v: 1;
  from: string;
  to: string;
  id: string;
  ts: number;
  /** The ephemeral X25519 public key (SPKI DER, base64). */
  eph: string;
  salt: string;
  iv: string;
  /** Ciphertext and GCM tag, base64. */
  ct: string;
  sig: string;
}

export class SealedMessageError extends Error {
  override name = "SealedMessageError";
  constructor(
    readonly reason:
      | "not-for-me"
      | "unknown-sender"
      | "bad-signature"
      | "expired"
      | "replayed"
      | "tampered"
      | "malformed",
    message: string,
  ) {
    super(message);
  }
}

const INFO = Buffer.from("airlock-sealed-v1");
const DEFAULT_WINDOW_MS = 5 * 60_000;

const der = (key: KeyObject) => key.export({ type: "spki", format: "der" }).toString("base64");
const publicKey = (b64: string) => createPublicKey({ key: Buffer.from(b64, "base64"), format: "der", type: "spki" });

function headerBytes(m: Pick<SealedMessage, "v" | "from" | "to" | "id" | "ts" | "eph" | "salt">): Buffer {
  return Buffer.from(JSON.stringify([m.v, m.from, m.to, m.id, m.ts, m.eph, m.salt]));
}

function signedBytes(m: Omit<SealedMessage, "sig">): Buffer {
  return Buffer.concat([headerBytes(m), Buffer.from(m.iv, "base64"), Buffer.from(m.ct, "base64")]);
}

function key(shared: Buffer, salt: Buffer): Buffer {
  return Buffer.from(hkdfSync("sha256", shared, salt, INFO, 32));
}

export class Keyring {
  private readonly signing = generateKeyPairSync("ed25519");
  private readonly agreement = generateKeyPairSync("x25519");
  private readonly trusted = new Map<string, { sign: KeyObject; agree: KeyObject }>();
  private readonly seen = new Map<string, number>();

  constructor(
    readonly agent: string,
    private readonly windowMs = DEFAULT_WINDOW_MS,
  ) {}

  /** This agent's public keys, to hand to the others. */
  publicKeys(): PublicKeys {
    return { agent: this.agent, sign: der(this.signing.publicKey), agree: der(this.agreement.publicKey) };
  }

  /** Accept an agent's public keys (from its card, its presence, the run). */
  trust(keys: PublicKeys): void {
    this.trusted.set(keys.agent, { sign: publicKey(keys.sign), agree: publicKey(keys.agree) });
  }

  knows(agent: string): boolean {
    return this.trusted.has(agent);
  }

  /** Sign and encrypt `body` (JSON) for `to`, whose keys must be trusted. */
  seal(to: string, body: unknown): SealedMessage {
    const recipient = this.trusted.get(to);
    if (!recipient)
      throw new SealedMessageError(
        "unknown-sender",
        `no public keys for ${to}: trust() them first (from its card or presence)`,
      );
    const eph = generateKeyPairSync("x25519");
    const salt = randomBytes(16);
    const iv = randomBytes(12);
    const head = {
      v: 1 as const,
      from: this.agent,
      to,
      id: randomUUID(),
      ts: Date.now(),
      eph: der(eph.publicKey),
      salt: salt.toString("base64"),
    };
    const cipher = createCipheriv(
      "aes-256-gcm",
      key(diffieHellman({ privateKey: eph.privateKey, publicKey: recipient.agree }), salt),
      iv,
    );
    cipher.setAAD(headerBytes(head));
    const ct = Buffer.concat([cipher.update(JSON.stringify(body)), cipher.final(), cipher.getAuthTag()]).toString(
      "base64",
    );
    const unsigned = { ...head, iv: iv.toString("base64"), ct };
    return { ...unsigned, sig: sign(null, signedBytes(unsigned), this.signing.privateKey).toString("base64") };
  }

  /** Verify and decrypt a message for this agent; throws SealedMessageError saying why it is refused. */
  open<T = unknown>(m: SealedMessage, now = Date.now()): T {
    if (m?.v !== 1 || typeof m.ct !== "string" || typeof m.sig !== "string")
      throw new SealedMessageError("malformed", "not a sealed message");
    if (m.to !== this.agent) throw new SealedMessageError("not-for-me", `sealed for ${m.to}, not ${this.agent}`);
    const sender = this.trusted.get(m.from);
    if (!sender) throw new SealedMessageError("unknown-sender", `from ${m.from}, whose public keys are not trusted`);
    const { sig, ...unsigned } = m;
    if (!verify(null, signedBytes(unsigned), sender.sign, Buffer.from(sig, "base64")))
      throw new SealedMessageError("bad-signature", `the signature is not ${m.from}'s`);
    if (Math.abs(now - m.ts) > this.windowMs)
      throw new SealedMessageError(
        "expired",
        `sent ${Math.round((now - m.ts) / 1000)} s ago, outside the ${this.windowMs / 1000} s window`,
      );
    for (const [id, ts] of this.seen) if (now - ts > this.windowMs) this.seen.delete(id);
    if (this.seen.has(m.id)) throw new SealedMessageError("replayed", `message ${m.id} was already opened`);
    const data = Buffer.from(m.ct, "base64");
    const decipher = createDecipheriv(
      "aes-256-gcm",
      key(
        diffieHellman({ privateKey: this.agreement.privateKey, publicKey: publicKey(m.eph) }),
        Buffer.from(m.salt, "base64"),
      ),
      Buffer.from(m.iv, "base64"),
    );
    decipher.setAAD(headerBytes(m));
    decipher.setAuthTag(data.subarray(data.length - 16));
    let plain: Buffer;
    try {
      plain = Buffer.concat([decipher.update(data.subarray(0, data.length - 16)), decipher.final()]);
    } catch {
      throw new SealedMessageError("tampered", `message ${m.id} does not decrypt (altered on the way)`);
    }
    this.seen.set(m.id, m.ts);
    return JSON.parse(plain.toString()) as T;
  }
}
