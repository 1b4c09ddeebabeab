// SafetensorsFile: validates the header on open, then reads one tensor at a time at its offset
// (never the whole file), so a multi-GB checkpoint costs only the tensor in hand.

import { HOST_IS_LITTLE_ENDIAN, swapBytesInPlace } from './byte-order.ts';
import { DTYPE_BYTES, type Tensor, type TensorInfo, viewBytesAs } from './dtypes.ts';
import { SafetensorsError } from './errors.ts';
import { decodeIntoFloat32 } from './float-conversion.ts';
import { MAX_HEADER_BYTES, parseHeaderJson, validateHeader } from './header.ts';
import { type FileRef, openFileRange, type RangeSource } from './range-source.ts';

/** One read() call moves at most this much (Node caps a single read near 2 GiB). */
const MAX_READ_CHUNK = 1 << 30;
/** The largest tensor read ahead; bigger ones are read only when asked for. */
const MAX_READAHEAD_BYTES = 256 << 20;

export interface OpenOptions {
  /**
   * When tensors are read in file order, start reading the next one in the background (on libuv's
   * thread pool) so disk time overlaps the caller's compute. Default true; costs one tensor of memory.
   */
  readahead?: boolean;
}

/** A tensor being read ahead; `widened` is the Float32Array whose tail receives it (readFloat32 layout). */
interface Prefetch {
  name: string;
  bytes: Promise<Uint8Array>;
  widened: Float32Array | null;
}

/** A tensor's raw bytes and, when they sit in the tail of one, the Float32Array to widen them into. */
interface Loaded {
  bytes: Uint8Array;
  widened: Float32Array | null;
}

export class SafetensorsFile {
  readonly path: string;
  readonly metadata: Record<string, string>;
  /** Byte length of the header JSON (padding included), as stored in the first 8 bytes. */
  readonly headerLength: number;
  readonly fileSize: number;
  #handle: RangeSource | null;
  readonly #tensors: Map<string, TensorInfo>;
  readonly #dataStart: number;
  /** Tensors in file (offset) order, and each name's position in it, for sequential readahead. */
  readonly #byOffset: TensorInfo[];
  readonly #position: Map<string, number>;
  readonly #readahead: boolean;
  #lastPosition = -1;
  #prefetch: Prefetch | null = null;

  private constructor(
    path: string,
    handle: RangeSource,
    headerLength: number,
    fileSize: number,
    tensors: TensorInfo[],
    metadata: Record<string, string>,
    readahead: boolean,
  ) {
    this.path = path;
    this.#handle = handle;
    this.headerLength = headerLength;
    this.fileSize = fileSize;
    this.#dataStart = 8 + headerLength;
    this.#tensors = new Map(tensors.map((t) => [t.name, t]));
    this.metadata = metadata;
    this.#byOffset = [...tensors].sort((a, b) => a.dataOffsets[0] - b.dataOffsets[0]);
    this.#position = new Map(this.#byOffset.map((t, i) => [t.name, i]));
    this.#readahead = readahead;
  }

  /** `file`: a path, or a RangeSource (e.g. an object store's ranged reads); closed with this reader. */
  static async open(file: FileRef, options: OpenOptions = {}): Promise<SafetensorsFile> {
    const handle = typeof file === 'string' ? await openFileRange(file) : file;
    const filePath = handle.name;
    try {
      const size = handle.size;
      if (size < 8) {
        throw new SafetensorsError(
          'file_too_small',
          filePath,
          `${size} bytes is too short for a header length`,
        );
      }
      const lengthBytes = await readExactly(handle, new Uint8Array(8), 0, filePath);
      const declared = new DataView(lengthBytes.buffer).getBigUint64(0, true);
      if (declared > BigInt(MAX_HEADER_BYTES)) {
        throw new SafetensorsError(
          'header_too_large',
          filePath,
          `header length ${declared} exceeds ${MAX_HEADER_BYTES}`,
        );
      }
      const headerLength = Number(declared);
      if (8 + headerLength > size) {
        throw new SafetensorsError(
          'header_out_of_bounds',
          filePath,
          `header length ${headerLength} goes past the end of the file (${size} bytes)`,
        );
      }
      const headerBytes = await readExactly(handle, new Uint8Array(headerLength), 8, filePath);
      const json = parseHeaderJson(headerBytes, filePath);
      const { tensors, metadata } = validateHeader(json, size - 8 - headerLength, filePath);
      return new SafetensorsFile(
        filePath,
        handle,
        headerLength,
        size,
        tensors,
        metadata,
        options.readahead ?? true,
      );
    } catch (error) {
      await handle.close();
      throw error;
    }
  }

  /** Tensor names in header order. */
  names(): string[] {
    return [...this.#tensors.keys()];
  }

  has(name: string): boolean {
    return this.#tensors.has(name);
  }

  info(name: string): TensorInfo {
    const info = this.#tensors.get(name);
    if (!info) throw new SafetensorsError('tensor_not_found', this.path, 'no such tensor', name);
    return info;
  }

  /** The tensor's raw little-endian bytes, in a buffer aligned for its element type. */
  async readBytes(name: string): Promise<Uint8Array> {
    return (await this.#load(this.info(name), false)).bytes;
  }

  async read(name: string): Promise<Tensor> {
    const info = this.info(name);
    const { bytes } = await this.#load(info, false);
    if (!HOST_IS_LITTLE_ENDIAN) swapBytesInPlace(bytes, DTYPE_BYTES[info.dtype]);
    return { dtype: info.dtype, shape: [...info.shape], data: viewBytesAs(bytes, info.dtype) };
  }

  /** Any numeric dtype -> a fresh Float32Array (F16/BF16 decoded exactly). */
  async readFloat32(name: string): Promise<Float32Array> {
    const info = this.info(name);
    const { bytes, widened } = await this.#load(info, true);
    if (!HOST_IS_LITTLE_ENDIAN) swapBytesInPlace(bytes, DTYPE_BYTES[info.dtype]);
    if (info.dtype === 'F32') return viewBytesAs(bytes, 'F32') as Float32Array;
    return decodeIntoFloat32(
      info.dtype,
      viewBytesAs(bytes, info.dtype),
      widened ?? new Float32Array(info.numel),
    );
  }

  /**
   * readFloat32 into a caller-owned array of exactly numel elements. Reusing one array across tensors
   * skips the allocation, page faults and GC of a fresh one per read (the bulk of a decode's cost).
   */
  async readFloat32Into(name: string, out: Float32Array): Promise<Float32Array> {
    const info = this.info(name);
    if (out.length !== info.numel) {
      throw new SafetensorsError(
        'target_size_mismatch',
        this.path,
        `target holds ${out.length} elements, not ${info.numel}`,
        name,
      );
    }
    const { bytes } = await this.#load(info, true, out);
    if (!HOST_IS_LITTLE_ENDIAN) swapBytesInPlace(bytes, DTYPE_BYTES[info.dtype]);
    const source = viewBytesAs(bytes, info.dtype);
    if (info.dtype === 'F32') {
      if (source.buffer !== out.buffer || source.byteOffset !== out.byteOffset)
        out.set(source as Float32Array);
      return out;
    }
    // bytes sit in out's tail (decoded in place) or in a separate buffer (read ahead, or 8-byte dtypes)
    return decodeIntoFloat32(info.dtype, source, out);
  }

  /**
   * A tensor's raw little-endian bytes, read straight into a caller-owned buffer (a merge's pooled
   * working set): no allocation, no read-ahead (the caller pipelines). With `byteOffset`, the target
   * receives its length of the tensor's bytes from there (a row range of a large tensor, merged in
   * pieces); the range must lie inside the tensor and hold whole elements.
   */
  async readBytesInto(name: string, target: Uint8Array, byteOffset?: number): Promise<Uint8Array> {
    const info = this.info(name);
    const size = DTYPE_BYTES[info.dtype];
    if (byteOffset === undefined && target.byteLength !== info.byteLength) {
      throw new SafetensorsError(
        'target_size_mismatch',
        this.path,
        `target holds ${target.byteLength} bytes, not ${info.byteLength}`,
        name,
      );
    }
    const offset = byteOffset ?? 0;
    const inside =
      Number.isSafeInteger(offset) &&
      offset >= 0 &&
      offset % size === 0 &&
      target.byteLength % size === 0 &&
      offset + target.byteLength <= info.byteLength;
    if (!inside) {
      throw new SafetensorsError(
        'target_size_mismatch',
        this.path,
        `bytes ${offset}..${offset + target.byteLength} are not whole ${info.dtype} elements within its ${info.byteLength}`,
        name,
      );
    }
    await this.#readInto(info, target, offset);
    if (!HOST_IS_LITTLE_ENDIAN) swapBytesInPlace(target, size);
    return target;
  }

  async close(): Promise<void> {
    const pending = this.#prefetch;
    this.#prefetch = null;
    await pending?.bytes.catch(() => undefined);
    const handle = this.#handle;
    this.#handle = null;
    await handle?.close();
  }

  /**
   * Reads a tensor, or takes it from the read-ahead, and keeps the read-ahead going: when this read
   * follows the previous one in file order, the next tensor is read in the background, in the same
   * layout (raw, or the tail of a Float32Array for readFloat32) so that taking it costs no extra copy.
   */
  async #load(info: TensorInfo, widen: boolean, into?: Float32Array): Promise<Loaded> {
    let loading: Promise<Loaded>;
    const pending = this.#prefetch;
    if (pending?.name === info.name) {
      this.#prefetch = null;
      loading = pending.bytes.then((bytes) => ({ bytes, widened: pending.widened }));
    } else {
      const target = into ? this.#tailOf(info, into) : this.#allocate(info, widen);
      loading = this.#readInto(info, target.bytes).then(() => target);
    }
    const position = this.#position.get(info.name)!;
    const sequential = position === this.#lastPosition + 1 || position === this.#lastPosition;
    this.#lastPosition = position;
    const next = this.#byOffset[position + 1];
    if (this.#prefetch && this.#prefetch.name !== next?.name) this.#prefetch = null;
    if (this.#readahead && sequential && next && !this.#prefetch && this.#handle) {
      if (next.numel * 4 <= MAX_READAHEAD_BYTES) {
        // a caller that brings its own arrays gets raw bytes ahead: no Float32Array allocated for it
        const target = this.#allocate(next, widen && !into);
        const bytes = this.#readInto(next, target.bytes).then(() => target.bytes);
        bytes.catch(() => undefined); // the error surfaces if and when that tensor is read
        this.#prefetch = { name: next.name, bytes, widened: target.widened };
      }
    }
    return loading;
  }

  /** Where a tensor's bytes go to be widened in place inside `out` (a separate buffer for 8-byte dtypes). */
  #tailOf(info: TensorInfo, out: Float32Array): Loaded {
    const size = DTYPE_BYTES[info.dtype];
    if (size > 4 || !HOST_IS_LITTLE_ENDIAN) return { bytes: new Uint8Array(info.byteLength), widened: null };
    return {
      bytes: new Uint8Array(out.buffer, out.byteOffset + (4 - size) * info.numel, info.byteLength),
      widened: out,
    };
  }

  /**
   * A fresh buffer for a tensor's bytes (fresh ArrayBuffers are aligned for any element type, whatever
   * the offset in the file). For readFloat32, narrow dtypes go to the tail of the output Float32Array
   * and are widened in place: no second buffer.
   */
  #allocate(info: TensorInfo, widen: boolean): Loaded {
    const size = DTYPE_BYTES[info.dtype];
    if (!widen || size > 4 || !HOST_IS_LITTLE_ENDIAN)
      return { bytes: new Uint8Array(info.byteLength), widened: null };
    const out = new Float32Array(info.numel);
    return { bytes: new Uint8Array(out.buffer, (4 - size) * info.numel, info.byteLength), widened: out };
  }

  async #readInto(info: TensorInfo, target: Uint8Array, byteOffset = 0): Promise<void> {
    if (!this.#handle) throw new SafetensorsError('file_closed', this.path, 'file is closed', info.name);
    const position = this.#dataStart + info.dataOffsets[0] + byteOffset;
    await readExactly(this.#handle, target, position, this.path, info.name);
  }
}

/** Fills `target` from `position`; a short read means the file shrank under us. */
async function readExactly(
  handle: RangeSource,
  target: Uint8Array,
  position: number,
  file: string,
  tensor?: string,
): Promise<Uint8Array> {
  let done = 0;
  while (done < target.length) {
    const length = Math.min(target.length - done, MAX_READ_CHUNK);
    const bytesRead = await handle.read(target, done, length, position + done);
    if (bytesRead === 0) {
      throw new SafetensorsError(
        'file_truncated',
        file,
        `file ended ${target.length - done} bytes early (at byte ${position + done})`,
        tensor,
      );
    }
    done += bytesRead;
  }
  return target;
}
