/**
 * Creating and deleting Kafka SCRAM credentials at run time (AlterUserScramCredentials, KIP-554,
 * API key 51, KRaft since 3.5). kafkajs has no such request, and the Java tool costs a JVM start
 * (about 1.2 s) per call, so this is a small client of its own: one TCP connection, SASL
 * SCRAM-SHA-512 login as the runner's admin, then the request. The credential is computed here
 * (salt, PBKDF2-HMAC-SHA512), as the protocol requires; only node:crypto is used.
 */
import { createHash, createHmac, pbkdf2Sync, randomBytes, timingSafeEqual } from "node:crypto";
import { Connection, Writer } from "./kafka-wire.js";

const SASL_HANDSHAKE = 17;
const SASL_AUTHENTICATE = 36;
const ALTER_USER_SCRAM_CREDENTIALS = 51;
const CREATE_ACLS = 30;
const DELETE_ACLS = 31;
/** ScramMechanism: 1 = SCRAM-SHA-256, 2 = SCRAM-SHA-512. */
const SCRAM_SHA_512 = 2;
export const SCRAM_ITERATIONS = 4096;

const saslName = (s: string) => s.replace(/=/g, "=3D").replace(/,/g, "=2C");
const hmac = (key: Buffer, data: string | Buffer) => createHmac("sha512", key).update(data).digest();

/** The SCRAM-SHA-512 salted password (what the broker stores, with the salt and iterations). */
export function saltedPassword(password: string, salt: Buffer, iterations = SCRAM_ITERATIONS): Buffer {
  return pbkdf2Sync(password, salt, iterations, 64, "sha512");
}

/** Log in with SASL SCRAM-SHA-512 (RFC 5802 over KIP-152's SaslAuthenticate). */
async function authenticate(conn: Connection, user: string, password: string): Promise<void> {
  const hs = await conn.request(SASL_HANDSHAKE, 1, new Writer().string("SCRAM-SHA-512").buffer());
  const hsError = hs.int16();
  if (hsError !== 0) throw new Error(`the broker does not offer SCRAM-SHA-512 (SaslHandshake error ${hsError})`);
  const nonce = randomBytes(24).toString("base64");
  const firstBare = `n=${saslName(user)},r=${nonce}`;
  const step = async (message: string) => {
    const r = await conn.request(SASL_AUTHENTICATE, 1, new Writer().bytes(Buffer.from(message)).buffer());
    const error = r.int16();
    const text = r.nullableString();
    const bytes = r.bytes();
    r.int64();
    if (error !== 0) throw new Error(`SCRAM login as ${user} refused: ${text ?? `error ${error}`}`);
    return bytes.toString();
  };
  const serverFirst = await step(`n,,${firstBare}`);
  const attrs = Object.fromEntries(serverFirst.split(",").map((kv) => [kv[0], kv.slice(2)]));
  if (!attrs.r?.startsWith(nonce)) throw new Error("SCRAM: the broker's nonce does not extend ours");
  const salted = saltedPassword(password, Buffer.from(attrs.s!, "base64"), Number(attrs.i));
  const clientKey = hmac(salted, "Client Key");
  const storedKey = createHash("sha512").update(clientKey).digest();
  const finalNoProof = `c=biws,r=${attrs.r}`;
  const authMessage = `${firstBare},${serverFirst},${finalNoProof}`;
  const signature = hmac(storedKey, authMessage);
  const proof = Buffer.from(clientKey.map((b, i) => b ^ signature[i]!));
  const serverFinal = await step(`${finalNoProof},p=${proof.toString("base64")}`);
  const expected = hmac(hmac(salted, "Server Key"), authMessage);
  const got = Buffer.from(/v=([^,]+)/.exec(serverFinal)?.[1] ?? "", "base64");
  if (got.length !== expected.length || !timingSafeEqual(got, expected))
    throw new Error("SCRAM: the broker's signature does not verify");
}

export interface ScramAdmin {
  host: string;
  port: number;
  user: string;
  password: string;
}

/** An ACL as Kafka's CreateAcls/DeleteAcls carry it (enum values as in the protocol). */
export interface AclBinding {
  resourceType: number;
  resourceName: string;
  resourcePatternType: number;
  principal: string;
  host: string;
  operation: number;
  permissionType: number;
}

/** An ACL binding as CreateAcls v1 and (as an exact filter) DeleteAcls v1 encode it. */
function writeAcl(body: Writer, a: AclBinding): void {
  body
    .int8(a.resourceType)
    .string(a.resourceName)
    .int8(a.resourcePatternType)
    .string(a.principal)
    .string(a.host)
    .int8(a.operation)
    .int8(a.permissionType);
}

/**
 * One authenticated admin connection for a run's identity: the SCRAM credential and the ACLs go
 * out on it together (one login, requests in flight at once).
 */
export class KafkaAdminSession {
  private constructor(private readonly conn: Connection) {}

  static async open(admin: ScramAdmin): Promise<KafkaAdminSession> {
    const conn = await Connection.open(admin.host, admin.port);
    try {
      await authenticate(conn, admin.user, admin.password);
    } catch (err) {
      conn.close();
      throw err;
    }
    return new KafkaAdminSession(conn);
  }

  /** Upsert (password given) or delete (undefined) SCRAM-SHA-512 credentials for users. */
  alterScram(changes: { user: string; password?: string }[]): Promise<void> {
    return alterOn(this.conn, changes);
  }

  async createAcls(acls: AclBinding[]): Promise<void> {
    if (!acls.length) return;
    const body = new Writer().int32(acls.length);
    for (const a of acls) writeAcl(body, a);
    const r = await this.conn.request(CREATE_ACLS, 1, body.buffer());
    r.int32();
    const failures: string[] = [];
    for (let i = 0, n = r.int32(); i < n; i++) {
      const error = r.int16();
      const message = r.nullableString();
      if (error !== 0) failures.push(message ?? `error ${error}`);
    }
    if (failures.length) throw new Error(`CreateAcls: ${failures.join("; ")}`);
  }

  /** Delete exactly these ACLs (each as an exact filter). */
  async deleteAcls(acls: AclBinding[]): Promise<void> {
    if (!acls.length) return;
    const body = new Writer().int32(acls.length);
    for (const a of acls) writeAcl(body, a);
    const r = await this.conn.request(DELETE_ACLS, 1, body.buffer());
    r.int32();
    const failures: string[] = [];
    for (let i = 0, n = r.int32(); i < n; i++) {
      const error = r.int16();
      const message = r.nullableString();
      for (let j = 0, m = r.int32(); j < m; j++) {
        r.int16();
        r.nullableString();
        r.int8();
        r.nullableString();
        r.int8();
        r.nullableString();
        r.nullableString();
        r.int8();
        r.int8();
      }
      if (error !== 0) failures.push(message ?? `error ${error}`);
    }
    if (failures.length) throw new Error(`DeleteAcls: ${failures.join("; ")}`);
  }

  close(): void {
    this.conn.close();
  }
}

/** Upsert (password given) or delete (undefined) SCRAM-SHA-512 credentials for users. */
export async function alterScramCredentials(
  admin: ScramAdmin,
  changes: { user: string; password?: string }[],
): Promise<void> {
  const session = await KafkaAdminSession.open(admin);
  try {
    await session.alterScram(changes);
  } finally {
    session.close();
  }
}

async function alterOn(conn: Connection, changes: { user: string; password?: string }[]): Promise<void> {
  {
    const deletions = changes.filter((c) => c.password === undefined);
    const upsertions = changes.filter((c) => c.password !== undefined);
    const body = new Writer().uvarint(deletions.length + 1);
    for (const d of deletions) body.compactString(d.user).int8(SCRAM_SHA_512).uvarint(0);
    body.uvarint(upsertions.length + 1);
    for (const u of upsertions) {
      const salt = randomBytes(32);
      body
        .compactString(u.user)
        .int8(SCRAM_SHA_512)
        .int32(SCRAM_ITERATIONS)
        .compactBytes(salt)
        .compactBytes(saltedPassword(u.password!, salt))
        .uvarint(0);
    }
    body.uvarint(0);
    const r = await conn.request(ALTER_USER_SCRAM_CREDENTIALS, 0, body.buffer(), true);
    r.int32(); // throttle time
    const n = r.uvarint() - 1;
    const failures: string[] = [];
    for (let i = 0; i < n; i++) {
      const user = r.compactNullableString();
      const error = r.int16();
      const message = r.compactNullableString();
      r.skipTags();
      // 91 RESOURCE_NOT_FOUND: deleting a credential that is already gone.
      if (error !== 0 && error !== 91) failures.push(`${user}: ${message ?? `error ${error}`}`);
    }
    if (failures.length) throw new Error(`AlterUserScramCredentials: ${failures.join("; ")}`);
  }
}

/** Whether the user can log in with this password (for tests and doctor). */
export async function scramLogin(host: string, port: number, user: string, password: string): Promise<true | string> {
  const conn = await Connection.open(host, port).catch((e: Error) => e);
  if (conn instanceof Error) return conn.message;
  try {
    await authenticate(conn, user, password);
    return true;
  } catch (err) {
    return (err as Error).message;
  } finally {
    conn.close();
  }
}
