/**
 * A broker's own log, read from where it stood when a run's identity was minted: how the runner
 * learns what RabbitMQ, Kafka and NATS refused that identity. Those brokers write each refusal to
 * their log with the user's name in it (and keep no other record an admin can query), so a run
 * reads only the lines added during the run and only those that name its own identity. An agent
 * cannot write to the broker's log except by being refused, so it cannot add, hide or change an
 * entry; what it can do is be refused very often, and every read is bounded (bytes per read, line
 * length), so a flood of refusals costs the runner a bounded amount of memory and time.
 */
import { open, stat } from "node:fs/promises";
import { DenialTally } from "./denial-tally.js";
import type { BusDenial } from "./kind.js";

export { MAX_LOG_DENIALS } from "./denial-tally.js";

/** Bytes read per call, at most: a flood beyond this is counted from what was read. */
export const MAX_LOG_READ = 8 * 1024 * 1024;
/** A longer line is cut here (a refusal's line is short; a long one is someone's payload). */
const MAX_LINE = 4096;
/** Terminal colour codes (ESC [ ... m). */
const ANSI = /\u001b\[[0-9;]*m/g;

export class BrokerLog {
  private constructor(
    readonly path: string,
    private offset: number,
  ) {}

  /** The log as it stands now; undefined when it cannot be read (then nothing is reported from it). */
  static async at(path: string): Promise<BrokerLog | undefined> {
    try {
      return new BrokerLog(path, (await stat(path)).size);
    } catch {
      return undefined;
    }
  }

  /**
   * The whole lines added since the last read (or since `at`) that contain `needle`, each cut to a
   * bounded length; at most `maxBytes` are read per call. A log that got shorter was rotated: it is
   * read from its start.
   */
  async linesWith(needle: string, maxBytes = MAX_LOG_READ): Promise<string[]> {
    const handle = await open(this.path, "r");
    try {
      const size = (await handle.stat()).size;
      if (size < this.offset) this.offset = 0;
      const want = Math.min(size - this.offset, maxBytes);
      if (want <= 0) return [];
      const buffer = Buffer.alloc(want);
      const { bytesRead } = await handle.read(buffer, 0, want, this.offset);
      // Only whole lines: a line still being written is read next time.
      const end = buffer.subarray(0, bytesRead).lastIndexOf(0x0a);
      if (end < 0) {
        // One line longer than a whole read: skipped, so that the next read can go on.
        if (bytesRead === maxBytes) this.offset += bytesRead;
        return [];
      }
      this.offset += end + 1;
      const out: string[] = [];
      for (const raw of buffer.subarray(0, end).toString("utf8").split("\n")) {
        if (!raw.includes(needle)) continue;
        // A console log (RabbitMQ's) colours its lines: the colour codes are not part of the line.
        const line = raw.replace(ANSI, "");
        out.push(line.length > MAX_LINE ? line.slice(0, MAX_LINE) : line);
      }
      return out;
    } finally {
      await handle.close();
    }
  }
}

/**
 * What one identity was refused so far, as `parse` reads its lines: each call reads what the log
 * gained since the last and adds it up, so it can be asked during the run and again at its end.
 */
export function logDenials(
  log: BrokerLog,
  needle: string,
  parse: (lines: string[]) => BusDenial[],
): () => Promise<BusDenial[]> {
  const tally = new DenialTally();
  return async () => {
    for (const d of parse(await log.linesWith(needle))) tally.add(d);
    return tally.list();
  };
}
