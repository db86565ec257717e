/**
 * Which images may gate themselves: exactly the image IDs airlock itself built, recorded here when
 * the build finishes. Nothing an image carries (labels, files, env, its tag) decides it: an image
 * derived from ours, or any image with our label, is "foreign" and runs behind a gate container
 * with no capabilities. An image ID is the hash of the image's config (and through it of every
 * layer), so a recorded ID cannot stand for other content.
 *
 * The record is a file in airlock's state folder (mode 0600): AIRLOCK_STATE_DIR, else
 * $XDG_STATE_HOME/airlock, else ~/.local/state/airlock (/var/lib/airlock for root). A missing record
 * only costs a rebuild, which the engine's build cache makes quick, after which the ID is recorded.
 */
import { mkdirSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { stateDir } from "../settings.js";

interface TrustRecord {
  /** image ID → what it is and when airlock built it. */
  images: Record<string, { tag: string; kind: string; builtAt: string; facts?: Record<string, string> }>;
}

export class TrustedImages {
  private record: TrustRecord | undefined;

  constructor(private readonly file = join(stateDir(), "trusted-images.json")) {}

  private load(): TrustRecord {
    if (!this.record) {
      try {
        const parsed = JSON.parse(readFileSync(this.file, "utf8")) as TrustRecord;
        this.record = parsed && typeof parsed.images === "object" ? parsed : { images: {} };
      } catch {
        this.record = { images: {} };
      }
    }
    return this.record;
  }

  /** Whether airlock built the image with this ID. */
  has(imageId: string): boolean {
    // Re-read: another airlock process may have built it since.
    this.record = undefined;
    return Object.hasOwn(this.load().images, imageId);
  }

  /** Record an image airlock has just built. */
  add(imageId: string, tag: string, kind: string): void {
    this.record = undefined;
    const record = this.load();
    record.images[imageId] = { tag, kind, builtAt: new Date().toISOString() };
    this.save(record);
  }

  /** What airlock learned about one of its images once (e.g. its Python version), so later runs need not ask the image again. */
  fact(imageId: string, key: string): string | undefined {
    return this.load().images[imageId]?.facts?.[key];
  }

  setFact(imageId: string, key: string, value: string): void {
    this.record = undefined;
    const record = this.load();
    const entry = record.images[imageId];
    if (!entry) return;
    entry.facts = { ...entry.facts, [key]: value };
    this.save(record);
  }

  private save(record: TrustRecord): void {
    const dir = join(this.file, "..");
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    const tmp = `${this.file}.${process.pid}.tmp`;
    writeFileSync(tmp, `${JSON.stringify(record, null, 1)}\n`, { mode: 0o600 });
    renameSync(tmp, this.file);
  }
}

let shared: TrustedImages | undefined;

export function trustedImages(): TrustedImages {
  shared ??= new TrustedImages();
  return shared;
}
