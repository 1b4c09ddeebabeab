// The local scratch directory (`${dataDir}/tmp`) every process has whatever the blob store: uploads
// are staged here while hashed and validated, jobs write their results here before publishing.
// Leftovers of a crashed process are swept at start.
import { createHash } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import fs from 'node:fs/promises';
import path from 'node:path';
import { type Readable, Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { UploadTooLargeError } from './errors.ts';

export interface HashedFile {
  path: string;
  size: number;
  sha256: string;
}

/** Temporary files older than this were left by a crashed process and are swept at start. */
const STALE_TMP_MS = 24 * 3600 * 1000;

export class LocalScratch {
  readonly tmpDir: string;

  constructor(readonly dataDir: string) {
    this.tmpDir = path.join(dataDir, 'tmp');
  }

  /** Creates tmp/ and removes what a crashed process left there more than a day ago. */
  async init(): Promise<void> {
    await fs.mkdir(this.tmpDir, { recursive: true });
    const now = Date.now();
    for (const entry of await fs.readdir(this.tmpDir)) {
      const entryPath = path.join(this.tmpDir, entry);
      const stat = await fs.stat(entryPath).catch(() => null);
      if (stat && now - stat.mtimeMs > STALE_TMP_MS) await fs.rm(entryPath, { recursive: true, force: true });
    }
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
}
