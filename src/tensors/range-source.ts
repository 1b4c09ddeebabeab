// Where a safetensors reader gets its bytes: a local file, or anything else that can serve byte
// ranges (an object in S3-compatible storage read with ranged GETs). Readers ask only for the header
// and then one tensor's byte range at a time, so a store never has to hand over a whole file.
import { type FileHandle, open, readFile } from 'node:fs/promises';

export interface RangeSource {
  /** Names the source in error messages (a path, or an s3:// URL). */
  readonly name: string;
  /** Total bytes; known before any read. */
  readonly size: number;
  /**
   * Copies up to `length` bytes starting at `position` into `target[targetOffset...]`; answers how
   * many were copied (0 only at the end of the source). Same contract as FileHandle.read.
   */
  read(target: Uint8Array, targetOffset: number, length: number, position: number): Promise<number>;
  close(): Promise<void>;
}

/** A file path (opened lazily by the reader) or an already described range source. */
export type FileRef = string | RangeSource;

class FileRangeSource implements RangeSource {
  constructor(
    readonly name: string,
    readonly size: number,
    private readonly handle: FileHandle,
  ) {}

  async read(target: Uint8Array, targetOffset: number, length: number, position: number): Promise<number> {
    const { bytesRead } = await this.handle.read(target, targetOffset, length, position);
    return bytesRead;
  }

  close(): Promise<void> {
    return this.handle.close();
  }
}

/** Opens a local file as a range source (one file handle until close). */
export async function openFileRange(filePath: string): Promise<RangeSource> {
  const handle = await open(filePath, 'r');
  try {
    const { size } = await handle.stat();
    return new FileRangeSource(filePath, size, handle);
  } catch (error) {
    await handle.close();
    throw error;
  }
}

export function refName(ref: FileRef): string {
  return typeof ref === 'string' ? ref : ref.name;
}

/** A whole small file (JSON side files): read in one go, from disk or through ranges. */
export async function readWhole(ref: FileRef): Promise<Uint8Array> {
  if (typeof ref === 'string') return readFile(ref);
  const bytes = new Uint8Array(ref.size);
  let done = 0;
  while (done < bytes.length) {
    const read = await ref.read(bytes, done, bytes.length - done, done);
    if (read === 0) throw new Error(`${ref.name} ended ${bytes.length - done} bytes early`);
    done += read;
  }
  return bytes;
}
