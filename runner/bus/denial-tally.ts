/**
 * A run's refusals on one broker, counted by what was refused and bounded: at most MAX_LOG_DENIALS
 * distinct entries, and every refusal past them counted in one last entry. What the brokers' logs
 * (broker-log.ts) and the MQTT tap (mqtt-tap.ts) add to, so a flood of refusals cannot grow it.
 */
import { denialKey, type BusDenial } from "./kind.js";

/** Distinct refusals kept per identity and broker; more are counted in one last entry. */
export const MAX_LOG_DENIALS = 200;

export class DenialTally {
  private readonly seen = new Map<string, BusDenial>();
  private more: BusDenial | undefined;

  /** Add `d` (its count to an entry already there). */
  add(d: BusDenial): void {
    const key = denialKey(d);
    const prev = this.seen.get(key);
    if (prev) prev.count += d.count;
    else if (this.seen.size < MAX_LOG_DENIALS) this.seen.set(key, { ...d });
    else if (this.more) this.more.count += d.count;
    else
      this.more = {
        broker: d.broker,
        what: "other",
        name: "(more refusals)",
        count: d.count,
        fix: `only the first ${MAX_LOG_DENIALS} distinct refusals are listed`,
      };
  }

  /** A copy of the entries so far. */
  list(): BusDenial[] {
    return [...this.seen.values(), ...(this.more ? [this.more] : [])].map((d) => ({ ...d }));
  }
}
