// Content-addressed blobs under `${dataDir}/blobs/sha256/ab/cdef...`. Files are written to a
// temporary file on the same filesystem while being hashed, then linked into place atomically;
// identical bytes are stored once. Reference counting lives in the ArtifactStore, not here.
import { createHash, randomUUID } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import fs from 'node:fs/promises';
import path from 'node:path';
import { Transform, type Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { UploadTooLargeError } from './errors.ts';

export interface HashedFile {
  path: string;
  size: number;
  sha256: string;
}

const SHA256_PATTERN = /^[0-9a-f]{64}$/;

export class BlobStore {
  readonly blobDir: string;
  readonly tmpDir: string;

  constructor(readonly dataDir: string) {
    this.blobDir = path.join(dataDir, 'blobs', 'sha256');
    this.tmpDir = path.join(dataDir, 'tmp');
  }

  async init(): Promise<void> {
    await fs.mkdir(this.blobDir, { recursive: true });
    await fs.mkdir(this.tmpDir, { recursive: true });
  }

  pathOf(sha256: string): string {
    if (!SHA256_PATTERN.test(sha256)) throw new Error(`not a sha256 digest: ${sha256}`);
    return path.join(this.blobDir, sha256.slice(0, 2), sha256.slice(2));
  }

  /** A fresh directory under tmp/ for one upload's staged files. */
  async makeStagingDir(): Promise<string> {
    await fs.mkdir(this.tmpDir, { recursive: true });
    return fs.mkdtemp(path.join(this.tmpDir, 'upload-'));
  }

  /**
   * Streams `source` into `target` while hashing; throws UploadTooLargeError past `maxBytes`
   * (the partial file is removed on every error path).
   */
  async writeHashed(source: Readable, target: string, label: string, maxBytes: number): Promise<HashedFile> {
    const hash = createHash('sha256');
    let size = 0;
    const meter = new Transform({
      transform(chunk: Buffer, _encoding, callback) {
        size += chunk.length;
        if (size > maxBytes) {
          callback(new UploadTooLargeError(label, maxBytes));
          return;
        }
        hash.update(chunk);
        callback(null, chunk);
      },
    });
    try {
      await pipeline(source, meter, createWriteStream(target, { flags: 'wx' }));
    } catch (error) {
      await fs.rm(target, { force: true });
      throw error;
    }
    return { path: target, size, sha256: hash.digest('hex') };
  }

  /** Hashes a file already on disk. */
  async hashFile(file: string): Promise<HashedFile> {
    const hash = createHash('sha256');
    let size = 0;
    for await (const chunk of createReadStream(file)) {
      size += (chunk as Buffer).length;
      hash.update(chunk as Buffer);
    }
    return { path: file, size, sha256: hash.digest('hex') };
  }

  async exists(sha256: string): Promise<boolean> {
    try {
      await fs.access(this.pathOf(sha256));
      return true;
    } catch {
      return false;
    }
  }

  /**
   * Puts `source`'s bytes in place as blob `sha256` without touching `source`: a hard link
   * (atomic), or on another filesystem a copy to tmp/ then an atomic rename. Existing blob: no-op.
   */
  async place(source: string, sha256: string): Promise<void> {
    const target = this.pathOf(sha256);
    if (await this.exists(sha256)) return;
    await fs.mkdir(path.dirname(target), { recursive: true });
    try {
      await fs.link(source, target);
      return;
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      if (code === 'EEXIST') return;
      if (code !== 'EXDEV' && code !== 'EPERM' && code !== 'ENOTSUP') throw error;
    }
    const temporary = path.join(this.tmpDir, `copy-${randomUUID()}`);
    try {
      await fs.copyFile(source, temporary);
      await fs.rename(temporary, target);
    } finally {
      await fs.rm(temporary, { force: true });
    }
  }

  /**
   * Moves a blob aside before deleting it, so that a concurrent upload of the same bytes can be
   * detected and the blob restored (see ArtifactStore.releaseBlobs).
   */
  async moveAside(sha256: string): Promise<string | null> {
    const aside = path.join(this.tmpDir, `delete-${sha256}-${randomUUID()}`);
    try {
      await fs.rename(this.pathOf(sha256), aside);
      return aside;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return null;
      throw error;
    }
  }

  async restore(aside: string, sha256: string): Promise<void> {
    try {
      await fs.link(aside, this.pathOf(sha256));
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
    }
    await fs.rm(aside, { force: true });
  }

  /** Every blob digest on disk (tests and maintenance). */
  async list(): Promise<string[]> {
    const digests: string[] = [];
    let prefixes: string[];
    try {
      prefixes = await fs.readdir(this.blobDir);
    } catch {
      return digests;
    }
    for (const prefix of prefixes) {
      for (const rest of await fs.readdir(path.join(this.blobDir, prefix))) digests.push(prefix + rest);
    }
    return digests.sort();
  }
}
