/**
 * A value that is made once and then kept, unless making it failed: a failure is handed to the
 * callers waiting for it and forgotten, so the next call tries again (an engine that was down, a
 * build that broke, a cluster that did not answer). The owner decides how long it lives: these
 * belong to objects (a runner's backend), never to a module.
 */
export class Remembered<T> {
  private made?: Promise<T>;

  get(make: () => Promise<T>): Promise<T> {
    if (!this.made) {
      const made = make();
      this.made = made;
      // The callers have the failure; only what is remembered is dropped (unless it was replaced meanwhile).
      made.catch(() => {
        if (this.made === made) this.made = undefined;
      });
    }
    return this.made;
  }

  /** Make it again next time (what it stood for is gone, e.g. the network was removed). */
  forget(): void {
    this.made = undefined;
  }
}

/** Remembered values by key. */
export class RememberedByKey<K, T> {
  private readonly made = new Map<K, Remembered<T>>();

  get(key: K, make: () => Promise<T>): Promise<T> {
    let entry = this.made.get(key);
    if (!entry) {
      entry = new Remembered<T>();
      this.made.set(key, entry);
    }
    return entry.get(make);
  }
}
