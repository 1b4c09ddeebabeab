// The first bytes of stored safetensors blobs (the 8-byte length and the JSON header), kept in memory for the
// API's checks before queueing: a merge request plans against its inputs' headers, and without this each
// request opens, stats, reads and closes every input file. Blobs are content-addressed and never change, so
// a header read once stays true; entries are keyed by sha256 and the cache is bounded in bytes (least
// recently used go first). Headers too large to keep are read from the blob as before.
import { type FileRef, openFileRange, type RangeSource } from '../tensors/index.ts';

export interface HeaderCacheOptions {
  /** Bytes held in all (default 32 MiB). */
  maxBytes?: number;
  /** Largest header kept (default 1 MiB, with its 8-byte length); larger ones are never cached. */
  maxEntryBytes?: number;
}

export class HeaderCache {
  private readonly entries = new Map<string, Uint8Array>();
  private bytes = 0;
  private readonly maxBytes: number;
  private readonly maxEntryBytes: number;

  constructor(options: HeaderCacheOptions = {}) {
    this.maxBytes = options.maxBytes ?? 32 << 20;
    this.maxEntryBytes = options.maxEntryBytes ?? 1 << 20;
  }

  /** A source for the blob `sha256` (`inner`, `size` bytes) that serves its header from memory once known. */
  source(sha256: string, size: number, inner: FileRef): RangeSource {
    return new HeaderCachedSource(this, sha256, size, inner);
  }

  /** The cached prefix (length + header) of a blob, refreshed as most recently used. */
  get(sha256: string): Uint8Array | undefined {
    const prefix = this.entries.get(sha256);
    if (prefix) {
      this.entries.delete(sha256);
      this.entries.set(sha256, prefix);
    }
    return prefix;
  }

  /** Whether a prefix of this many bytes may be kept. */
  fits(length: number): boolean {
    return length <= this.maxEntryBytes && length <= this.maxBytes;
  }

  put(sha256: string, prefix: Uint8Array): void {
    if (!this.fits(prefix.length) || this.entries.has(sha256)) return;
    for (const [key, old] of this.entries) {
      if (this.bytes + prefix.length <= this.maxBytes) break;
      this.entries.delete(key);
      this.bytes -= old.length;
    }
    this.entries.set(sha256, prefix);
    this.bytes += prefix.length;
  }

  get size(): number {
    return this.entries.size;
  }
}

class HeaderCachedSource implements RangeSource {
  readonly name: string;
  private inner: RangeSource | null = null;
  private prefix: Uint8Array | undefined;

  constructor(
    private readonly cache: HeaderCache,
    private readonly sha256: string,
    readonly size: number,
    private readonly ref: FileRef,
  ) {
    this.name = typeof ref === 'string' ? ref : ref.name;
    this.prefix = cache.get(sha256);
  }

  /** The blob itself, opened on first need. */
  private async open(): Promise<RangeSource> {
    this.inner ??= typeof this.ref === 'string' ? await openFileRange(this.ref) : this.ref;
    return this.inner;
  }

  /** Reads the length and the header from the blob once and keeps them, when they are small enough. */
  private async learnPrefix(): Promise<void> {
    const source = await this.open();
    const length = new Uint8Array(8);
    if ((await readFully(source, length, 0)) < 8) return;
    const declared = new DataView(length.buffer).getBigUint64(0, true);
    const total = 8n + declared;
    if (total > BigInt(this.size) || !this.cache.fits(Number(total))) return;
    const prefix = new Uint8Array(Number(total));
    if ((await readFully(source, prefix, 0)) < prefix.length) return;
    this.cache.put(this.sha256, prefix);
    this.prefix = prefix;
  }

  async read(target: Uint8Array, targetOffset: number, length: number, position: number): Promise<number> {
    if (!this.prefix && position === 0 && !this.inner) await this.learnPrefix();
    const prefix = this.prefix;
    if (prefix && position + length <= prefix.length) {
      target.set(prefix.subarray(position, position + length), targetOffset);
      return length;
    }
    return (await this.open()).read(target, targetOffset, length, position);
  }

  async close(): Promise<void> {
    const inner = this.inner ?? (typeof this.ref === 'string' ? null : this.ref);
    this.inner = null;
    if (inner) await inner.close();
  }
}

/** Fills `target` from `position` until it is full or the source ends; answers the bytes read. */
async function readFully(source: RangeSource, target: Uint8Array, position: number): Promise<number> {
  let done = 0;
  while (done < target.length) {
    const read = await source.read(target, done, target.length - done, position + done);
    if (read === 0) break;
    done += read;
  }
  return done;
}
