// DirectSink: a file written front to back with O_DIRECT, so a large output goes from our memory to the
// disk without being copied into (and accounted in) the page cache. That copy, with the page-cache
// folios it allocates and their writeback at fsync, cost 0.8-2.2 s of system time per GB written on
// the dev machine. O_DIRECT wants the buffer address, the length and the file offset aligned to the
// device's block; JS cannot see an address, so the bytes are staged in block-aligned buffers at an
// offset found by probing, and each full stage is written while the next ones fill. Where O_DIRECT is
// refused (some network and overlay filesystems, tmpfs before Linux 6.6, no O_DIRECT on the
// platform), open() answers null and the caller writes through the page cache as before.

import { constants, writeSync } from 'node:fs';
import { type FileHandle, open } from 'node:fs/promises';

/** O_DIRECT's alignment on every common device (a 512-byte device accepts it too). */
const BLOCK = 4096;
/** One stage: large writes keep the device busy with few syscalls. */
const STAGE_BYTES = 8 * 1024 * 1024;
/** Stages in memory: while one fills, up to three are being written (32 MiB in all). */
const STAGES = 4;
/** Backing stores are at least 8-byte aligned, so the block-aligned offset is a multiple of 8. */
const PROBE_STEP = 8;

/** Errors that mean "this file or filesystem does not do O_DIRECT", not a real I/O failure. */
function refusesDirect(error: unknown): boolean {
  const code = (error as NodeJS.ErrnoException).code;
  return code === 'EINVAL' || code === 'EOPNOTSUPP' || code === 'ENOTSUP';
}

export class DirectSink {
  readonly #handle: FileHandle;
  readonly #stages: Uint8Array[];
  /** The stage being filled (index into #stages), its fill, and the file offset where it starts. */
  #current = 0;
  #fill = 0;
  #stageStart = 0;
  /** The write in flight of each stage, if any. */
  readonly #inFlight: Array<Promise<void> | null>;
  #failure: unknown = null;

  private constructor(handle: FileHandle, stages: Uint8Array[]) {
    this.#handle = handle;
    this.#stages = stages;
    this.#inFlight = stages.map(() => null);
  }

  /**
   * Creates (or truncates) `filePath` for O_DIRECT writing; null when the platform or filesystem refuses
   * it (the file may then exist, empty: the caller reopens it normally). `expectedBytes` caps the stages
   * for a small file; `stageBytes` (a multiple of 4096) is for tests that cross many stages.
   */
  static async open(
    filePath: string,
    expectedBytes: number,
    stageBytes = STAGE_BYTES,
  ): Promise<DirectSink | null> {
    const direct = constants.O_DIRECT;
    if (!direct) return null;
    let handle: FileHandle;
    try {
      handle = await open(
        filePath,
        constants.O_WRONLY | constants.O_CREAT | constants.O_TRUNC | direct,
        0o644,
      );
    } catch (error) {
      if (refusesDirect(error)) return null;
      throw error;
    }
    try {
      const stage = Math.min(stageBytes, Math.max(BLOCK, Math.ceil(expectedBytes / BLOCK) * BLOCK));
      const backing = new ArrayBuffer(STAGES * stage + BLOCK);
      const offset = alignedOffset(handle.fd, backing);
      if (offset === null) {
        await handle.close();
        return null;
      }
      return new DirectSink(
        handle,
        Array.from({ length: STAGES }, (_, i) => new Uint8Array(backing, offset + i * stage, stage)),
      );
    } catch (error) {
      await handle.close().catch(() => undefined);
      throw error;
    }
  }

  /** Appends `bytes` to the file (staged; a full stage goes to the disk while the next ones fill). */
  async write(bytes: Uint8Array): Promise<void> {
    this.#throwIfFailed();
    let done = 0;
    while (done < bytes.length) {
      const stage = this.#stages[this.#current];
      const length = Math.min(bytes.length - done, stage.length - this.#fill);
      stage.set(bytes.subarray(done, done + length), this.#fill);
      this.#fill += length;
      done += length;
      if (this.#fill === stage.length) await this.#flushStage();
    }
  }

  /** Writes what is staged (the last block padded, then the file cut to its exact length). */
  async finish(): Promise<void> {
    this.#throwIfFailed();
    const length = this.#stageStart + this.#fill;
    const padded = Math.ceil(this.#fill / BLOCK) * BLOCK;
    if (padded > 0) {
      const stage = this.#stages[this.#current];
      stage.fill(0, this.#fill, padded);
      await this.#writeAll(stage.subarray(0, padded), this.#stageStart);
    }
    await Promise.all(this.#inFlight);
    this.#throwIfFailed();
    await this.#handle.truncate(length);
  }

  get handle(): FileHandle {
    return this.#handle;
  }

  /** Waits for writes in flight (ignoring their errors) and closes the file. */
  async close(): Promise<void> {
    await Promise.allSettled(this.#inFlight.map((w) => w ?? Promise.resolve()));
    await this.#handle.close();
  }

  /** Starts writing the full current stage and moves to the next one (waiting for its last write). */
  async #flushStage(): Promise<void> {
    const index = this.#current;
    const stage = this.#stages[index];
    const write = this.#writeAll(stage, this.#stageStart).catch((error) => {
      this.#failure ??= error;
    });
    this.#inFlight[index] = write;
    this.#stageStart += stage.length;
    this.#fill = 0;
    this.#current = (index + 1) % this.#stages.length;
    await this.#inFlight[this.#current];
    this.#inFlight[this.#current] = null;
    this.#throwIfFailed();
  }

  async #writeAll(bytes: Uint8Array, position: number): Promise<void> {
    let done = 0;
    while (done < bytes.length) {
      const { bytesWritten } = await this.#handle.write(bytes, done, bytes.length - done, position + done);
      // a short O_DIRECT write ends on a block boundary, so the rest stays aligned
      if (bytesWritten <= 0) throw new Error(`write returned ${bytesWritten} at byte ${position + done}`);
      done += bytesWritten;
    }
  }

  #throwIfFailed(): void {
    if (this.#failure !== null) throw this.#failure;
  }
}

/**
 * The first offset into `backing` at which an O_DIRECT write of one block succeeds (a 4096-byte write
 * at the start of the just-truncated file, overwritten later), or null when none does: the buffer's
 * address is fixed for its life, so one probe serves every later write from it.
 */
function alignedOffset(fd: number, backing: ArrayBuffer): number | null {
  for (let offset = 0; offset < BLOCK; offset += PROBE_STEP) {
    try {
      writeSync(fd, new Uint8Array(backing, offset, BLOCK), 0, BLOCK, 0);
      return offset;
    } catch (error) {
      if (!refusesDirect(error)) throw error;
    }
  }
  return null;
}
