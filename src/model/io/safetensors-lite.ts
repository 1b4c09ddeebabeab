import { readFile, rename, writeFile } from 'node:fs/promises';

// Stand-in until src/tensors (owned by the tensors helper) lands: reads a whole small file into memory. The
// runtime's callers only see `HostTensor`, so swapping this for src/tensors' Checkpoint changes nothing else.

/** A tensor held on the host: float data as F32, integer data (token ids, labels) as I64 bigint. */
export interface HostTensor {
  dtype: 'F32' | 'I64';
  shape: number[];
  data: Float32Array | BigInt64Array;
}

export interface SafetensorsContents {
  tensors: Map<string, HostTensor>;
  metadata: Record<string, string>;
}

export async function readSafetensors(filePath: string): Promise<SafetensorsContents> {
  const bytes = await readFile(filePath);
  if (bytes.length < 8) throw new Error(`${filePath}: too short for a safetensors file`);
  const headerLength = Number(bytes.readBigUInt64LE(0));
  if (headerLength > bytes.length - 8) throw new Error(`${filePath}: header length past end of file`);
  const header = JSON.parse(bytes.subarray(8, 8 + headerLength).toString('utf8')) as Record<
    string,
    { dtype: string; shape: number[]; data_offsets: [number, number] }
  >;
  const base = 8 + headerLength;
  const tensors = new Map<string, HostTensor>();
  let metadata: Record<string, string> = {};
  for (const [name, info] of Object.entries(header)) {
    if (name === '__metadata__') {
      metadata = info as unknown as Record<string, string>;
      continue;
    }
    const [start, end] = info.data_offsets;
    const raw = bytes.subarray(base + start, base + end);
    const copy = new Uint8Array(raw); // aligned copy
    tensors.set(name, decode(name, info.dtype, info.shape, copy.buffer));
  }
  return { tensors, metadata };
}

function decode(name: string, dtype: string, shape: number[], buffer: ArrayBuffer): HostTensor {
  switch (dtype) {
    case 'F32':
      return { dtype: 'F32', shape, data: new Float32Array(buffer) };
    case 'F64':
      return { dtype: 'F32', shape, data: Float32Array.from(new Float64Array(buffer)) };
    case 'F16':
      return { dtype: 'F32', shape, data: Float32Array.from(new Uint16Array(buffer), halfToFloat) };
    case 'BF16': {
      const bits = new Uint16Array(buffer);
      const out = new Uint32Array(bits.length);
      for (let i = 0; i < bits.length; i++) out[i] = bits[i] << 16;
      return { dtype: 'F32', shape, data: new Float32Array(out.buffer) };
    }
    case 'I64':
      return { dtype: 'I64', shape, data: new BigInt64Array(buffer) };
    case 'I32':
      return { dtype: 'I64', shape, data: BigInt64Array.from(new Int32Array(buffer), (v) => BigInt(v)) };
    default:
      throw new Error(`tensor ${name}: dtype ${dtype} is not supported by the model runtime`);
  }
}

function halfToFloat(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exponent = (h >> 10) & 0x1f;
  const fraction = h & 0x3ff;
  if (exponent === 0) return sign * 2 ** -14 * (fraction / 1024);
  if (exponent === 31) return fraction ? Number.NaN : sign * Number.POSITIVE_INFINITY;
  return sign * 2 ** (exponent - 15) * (1 + fraction / 1024);
}

/** Writes tensors in the given order; the file appears whole or not at all (temp file + rename). */
export async function writeSafetensorsFile(
  filePath: string,
  tensors: Array<[string, HostTensor]>,
  metadata?: Record<string, string>,
): Promise<void> {
  const header: Record<string, unknown> = {};
  if (metadata && Object.keys(metadata).length > 0) header.__metadata__ = metadata;
  let offset = 0;
  for (const [name, t] of tensors) {
    const size = t.data.byteLength;
    header[name] = { dtype: t.dtype, shape: t.shape, data_offsets: [offset, offset + size] };
    offset += size;
  }
  let headerText = JSON.stringify(header);
  headerText += ' '.repeat((8 - (headerText.length % 8)) % 8); // 8-byte alignment of the data section
  const headerBytes = Buffer.from(headerText, 'utf8');
  const prefix = Buffer.alloc(8);
  prefix.writeBigUInt64LE(BigInt(headerBytes.length));
  const parts = [
    prefix,
    headerBytes,
    ...tensors.map(([, t]) => Buffer.from(t.data.buffer, t.data.byteOffset, t.data.byteLength)),
  ];
  const temp = `${filePath}.partial`;
  await writeFile(temp, Buffer.concat(parts));
  await rename(temp, filePath);
}
