// SafetensorsWriter: writes the header up front from the specs, then streams each tensor's bytes as
// write() is called, in spec order. It writes to the final path (atomic placement is the store's job)
// and abort() removes the partial file.

import { type FileHandle, open, rm } from 'node:fs/promises';
import { HOST_IS_LITTLE_ENDIAN, swapBytesInPlace } from './byte-order.ts';
import {
  bytesOf,
  DTYPE_BYTES,
  matchesDType,
  type Tensor,
  type TensorInfo,
  type TensorSpec,
  type TypedArray,
} from './dtypes.ts';
import { SafetensorsError } from './errors.ts';
import { encodeHeader, layoutTensors } from './header.ts';

const MAX_WRITE_CHUNK = 1 << 30;

export class SafetensorsWriter {
  readonly path: string;
  #handle: FileHandle | null;
  readonly #tensors: TensorInfo[];
  #next = 0;
  /** Where the next byte goes: the header, then the tensors back to back. */
  #position = 0;
  /** Bytes of the current tensor written so far by writePart. */
  #partBytes = 0;

  private constructor(path: string, handle: FileHandle, tensors: TensorInfo[]) {
    this.path = path;
    this.#handle = handle;
    this.#tensors = tensors;
  }

  /** Creates (or truncates) the file and writes the header; tensors follow in `specs` order. */
  static async create(
    filePath: string,
    specs: TensorSpec[],
    metadata?: Record<string, string>,
  ): Promise<SafetensorsWriter> {
    const tensors = layoutTensors(specs, filePath);
    const header = encodeHeader(tensors, metadata, filePath);
    const handle = await open(filePath, 'w');
    const writer = new SafetensorsWriter(filePath, handle, tensors);
    try {
      await writer.#writeBytes(header);
    } catch (error) {
      await writer.abort();
      throw error;
    }
    return writer;
  }

  async write(name: string, data: TypedArray): Promise<void> {
    if (this.#partBytes > 0) {
      throw new SafetensorsError(
        'writer_order',
        this.path,
        `tensor '${this.#tensors[this.#next].name}' is only partly written`,
        name,
      );
    }
    const info = this.#check(name, data);
    if (data.byteLength !== info.byteLength) {
      throw new SafetensorsError(
        'writer_size_mismatch',
        this.path,
        `got ${data.byteLength} bytes, ${info.dtype} [${info.shape}] needs ${info.byteLength}`,
        name,
      );
    }
    await this.#writeData(data, info);
    this.#next++;
  }

  /**
   * Writes the next piece of the current tensor (a row range of a large tensor merged in pieces);
   * pieces come in order and the tensor is done when their bytes add up to its size. Answers whether
   * it is done.
   */
  async writePart(name: string, data: TypedArray): Promise<boolean> {
    const info = this.#check(name, data);
    if (this.#partBytes + data.byteLength > info.byteLength) {
      throw new SafetensorsError(
        'writer_size_mismatch',
        this.path,
        `a ${data.byteLength}-byte piece after ${this.#partBytes} bytes overruns ${info.dtype} [${info.shape}] (${info.byteLength} bytes)`,
        name,
      );
    }
    await this.#writeData(data, info);
    this.#partBytes += data.byteLength;
    if (this.#partBytes < info.byteLength) return false;
    this.#partBytes = 0;
    this.#next++;
    return true;
  }

  /** The tensor `name` must be next and `data` of its dtype; answers its layout. */
  #check(name: string, data: TypedArray): TensorInfo {
    if (!this.#handle) throw new SafetensorsError('writer_closed', this.path, 'writer is closed', name);
    const info = this.#tensors[this.#next];
    if (!info) throw new SafetensorsError('writer_order', this.path, 'every tensor is already written', name);
    if (info.name !== name) {
      throw new SafetensorsError('writer_order', this.path, `expected tensor '${info.name}' next`, name);
    }
    if (!matchesDType(data, info.dtype)) {
      throw new SafetensorsError(
        'writer_dtype_mismatch',
        this.path,
        `${data.constructor.name} does not hold ${info.dtype}`,
        name,
      );
    }
    return info;
  }

  async #writeData(data: TypedArray, info: TensorInfo): Promise<void> {
    let bytes = bytesOf(data);
    if (!HOST_IS_LITTLE_ENDIAN) {
      bytes = bytes.slice();
      swapBytesInPlace(bytes, DTYPE_BYTES[info.dtype]);
    }
    await this.#writeBytes(bytes);
  }

  /** Checks every tensor was written, fsyncs and closes; an incomplete file is removed. */
  async close(): Promise<void> {
    const handle = this.#handle;
    if (!handle) throw new SafetensorsError('writer_closed', this.path, 'writer is closed');
    if (this.#next < this.#tensors.length) {
      const missing = this.#tensors[this.#next].name;
      const count = this.#tensors.length - this.#next;
      await this.abort();
      throw new SafetensorsError(
        'writer_incomplete',
        this.path,
        `${count} tensors were never written`,
        missing,
      );
    }
    try {
      await handle.sync();
      this.#handle = null;
      await handle.close();
    } catch (error) {
      await this.abort();
      throw error;
    }
  }

  /** Closes and removes the file (even a completed one); safe to call more than once or after a failure. */
  async abort(): Promise<void> {
    const handle = this.#handle;
    this.#handle = null;
    this.#next = this.#tensors.length + 1;
    await handle?.close().catch(() => undefined);
    await rm(this.path, { force: true });
  }

  async #writeBytes(bytes: Uint8Array): Promise<void> {
    const handle = this.#handle!;
    let done = 0;
    while (done < bytes.length) {
      const length = Math.min(bytes.length - done, MAX_WRITE_CHUNK);
      const { bytesWritten } = await handle.write(bytes, done, length, this.#position);
      done += bytesWritten;
      this.#position += bytesWritten;
    }
  }
}

/** Writes whole tensors (in the order given) to one file; nothing is left behind on failure. */
export async function writeSafetensors(
  filePath: string,
  tensors: Array<Tensor & { name: string }>,
  metadata?: Record<string, string>,
): Promise<void> {
  const writer = await SafetensorsWriter.create(
    filePath,
    tensors.map(({ name, dtype, shape }) => ({ name, dtype, shape })),
    metadata,
  );
  try {
    for (const tensor of tensors) await writer.write(tensor.name, tensor.data);
    await writer.close();
  } catch (error) {
    await writer.abort();
    throw error;
  }
}
