// A per-process memory of API keys recently verified against Redis, so that a busy API does not read the same
// key record on every request. Entries live `ttlMs` at most: a key revoked by another process (the CLI, another
// API replica) stops working here within that bound; one revoked through this process is dropped at once.
// Entries are keyed by the token's sha256 (never the token), bounded in number, and only known keys are kept.
export interface KeyCacheOptions {
  ttlMs: number;
  /** Most keys remembered; the oldest entry makes room for a new one. */
  maxEntries?: number;
  /** Milliseconds now (tests pass a clock they move). */
  now?: () => number;
}

const DEFAULT_MAX_ENTRIES = 10_000;

/** `Key`: what a verified key resolves to (AccessStore keeps its ApiKeyRecord). */
export class KeyCache<Key> {
  private readonly entries = new Map<string, { key: Key; expires: number }>();
  private readonly ttlMs: number;
  private readonly maxEntries: number;
  private readonly now: () => number;
  /** Counts local revocations: a read that began before one must not put back what it dropped. */
  private revision = 0;

  constructor(options: KeyCacheOptions) {
    this.ttlMs = options.ttlMs;
    this.maxEntries = options.maxEntries ?? DEFAULT_MAX_ENTRIES;
    this.now = options.now ?? Date.now;
  }

  /** The key verified under this token hash less than ttlMs ago, or undefined. */
  get(tokenHash: string): Key | undefined {
    const entry = this.entries.get(tokenHash);
    if (!entry) return undefined;
    if (this.now() >= entry.expires) {
      this.entries.delete(tokenHash);
      return undefined;
    }
    return entry.key;
  }

  /** What to hand back to `set` with a key read from Redis: when the read began, and the revision then. */
  beginRead(): { readAt: number; revision: number } {
    return { readAt: this.now(), revision: this.revision };
  }

  /** Remembers a key read from Redis; its time counts from when the read began, so the bound holds. */
  set(tokenHash: string, key: Key, read: { readAt: number; revision: number }): void {
    if (this.ttlMs <= 0 || read.revision !== this.revision) return;
    this.entries.delete(tokenHash);
    if (this.entries.size >= this.maxEntries) {
      // Map iteration is insertion order: the first entry is the oldest.
      const oldest = this.entries.keys().next();
      if (!oldest.done) this.entries.delete(oldest.value);
    }
    this.entries.set(tokenHash, { key, expires: read.readAt + this.ttlMs });
  }

  /** Forgets a key at once (it was revoked through this process). */
  forget(tokenHash: string): void {
    this.revision++;
    this.entries.delete(tokenHash);
  }

  get size(): number {
    return this.entries.size;
  }
}
