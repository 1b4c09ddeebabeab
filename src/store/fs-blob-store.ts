// Blobs in the local data directory: `${dataDir}/blobs/sha256/ab/cdef...`. A blob is published by a
// hard link (or, across filesystems, a copy to tmp/ and a rename), both atomic; identical bytes
// are stored once. The default store, and the one `lorafuse dev` uses.
import { randomUUID } from 'node:crypto';
import { createReadStream } from 'node:fs';
import fs from 'node:fs/promises';
import path from 'node:path';
import type { Readable } from 'node:stream';
import type { FileRef } from '../tensors/index.ts';
import { type BlobStore, type ByteRange, checkDigest } from './blob-store.ts';

export class FsBlobStore implements BlobStore {
  readonly kind = 'fs' as const;
  readonly blobDir: string;
  /** Same filesystem as the blobs: copies and asides are renamed from here atomically. */
  readonly tmpDir: string;

  constructor(readonly dataDir: string) {
    this.blobDir = path.join(dataDir, 'blobs', 'sha256');
    this.tmpDir = path.join(dataDir, 'tmp');
  }

  get location(): string {
    return this.blobDir;
  }

  async init(): Promise<void> {
    await fs.mkdir(this.blobDir, { recursive: true });
    await fs.mkdir(this.tmpDir, { recursive: true });
  }

  /** The blob directory is there and writable (tmp/ is probed separately as the data directory). */
  async probe(): Promise<void> {
    await fs.access(this.blobDir, fs.constants.W_OK);
  }

  pathOf(sha256: string): string {
    checkDigest(sha256);
    return path.join(this.blobDir, sha256.slice(0, 2), sha256.slice(2));
  }

  async exists(sha256: string): Promise<boolean> {
    try {
      await fs.access(this.pathOf(sha256));
      return true;
    } catch {
      return false;
    }
  }

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

  async dropAside(aside: string): Promise<void> {
    await fs.rm(aside, { force: true });
  }

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

  ref(sha256: string): FileRef {
    return this.pathOf(sha256);
  }

  async readStream(sha256: string, range?: ByteRange): Promise<Readable> {
    return createReadStream(this.pathOf(sha256), range ? { start: range.start, end: range.end } : {});
  }

  async materialize(sha256: string, target: string): Promise<void> {
    await fs.rm(target, { force: true });
    await fs.symlink(this.pathOf(sha256), target);
  }

  async close(): Promise<void> {}
}
