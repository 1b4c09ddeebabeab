// What the artifact store needs from a place that keeps content-addressed blobs: the local data
// directory (FsBlobStore, the default) or an S3-compatible bucket (S3BlobStore). Blobs are
// immutable and named by the sha256 of their bytes; a blob appears whole or not at all (atomic
// publication), so readers never see a partial file. Reference counting lives in the
// ArtifactStore (Redis), not here.
import type { Readable } from 'node:stream';
import type { FileRef } from '../tensors/index.ts';

export const SHA256_PATTERN = /^[0-9a-f]{64}$/;

export function checkDigest(sha256: string): string {
  if (!SHA256_PATTERN.test(sha256)) throw new Error(`not a sha256 digest: ${sha256}`);
  return sha256;
}

/** Inclusive byte range, as HTTP Range requests give it. */
export interface ByteRange {
  start: number;
  end: number;
}

export interface BlobStore {
  /** 'fs' or 's3'. */
  readonly kind: 'fs' | 's3';
  /** Where the blobs live, for logs: a directory or s3://bucket/prefix. */
  readonly location: string;
  /** Creates the directories (fs) or checks, and when missing creates, the bucket (s3). */
  init(): Promise<void>;
  /** A cheap round trip for readiness probes; throws when the store cannot be reached. */
  probe(): Promise<void>;
  exists(sha256: string): Promise<boolean>;
  /**
   * Publishes the local file `source` (whose digest the caller computed) as blob `sha256`, without
   * touching `source`. Atomic: a reader sees the whole blob or none. An existing blob: no-op.
   */
  place(source: string, sha256: string): Promise<void>;
  /**
   * Takes a blob out of its place but keeps its bytes aside, so that an upload of the same bytes
   * that counted itself in meanwhile can get it back (see ArtifactStore.removeOrphans). Null when
   * there was no such blob.
   */
  moveAside(sha256: string): Promise<string | null>;
  /** Puts a blob moved aside back in place (no-op when it is there again) and drops the aside copy. */
  restore(aside: string, sha256: string): Promise<void>;
  /** Deletes a blob moved aside for good. */
  dropAside(aside: string): Promise<void>;
  /** Every blob digest held, sorted (tests and maintenance). */
  list(): Promise<string[]>;
  /**
   * How readers reach a blob of `size` bytes named `name`: a local path (fs) or a RangeSource that
   * reads byte ranges on demand (s3). Nothing is fetched until the reader asks for bytes.
   */
  ref(sha256: string, size: number, name: string): FileRef;
  /** The blob's bytes (or the inclusive `range` of them) as a stream, for downloads. */
  readStream(sha256: string, range?: ByteRange): Promise<Readable>;
  /**
   * Makes the blob available as the local file `target` for code that reads folders by path (the
   * model runtime): a symbolic link to the blob (fs) or a download (s3). Replaces `target`.
   */
  materialize(sha256: string, target: string): Promise<void>;
  /** Releases connections (s3); the store is unusable afterwards. */
  close(): Promise<void>;
}
