// The safetensors header: the checked steps that turn its bytes into tensor infos (reader side)
// and the bytes the writer puts in front of the data.

import { DTYPE_BYTES, isDType, numelOf, type DType, type TensorInfo, type TensorSpec } from './dtypes.ts';
import { SafetensorsError } from './errors.ts';
import {
  isJsonObject,
  JsonDuplicateKeyError,
  JsonNumber,
  type JsonObject,
  type JsonValue,
  parseStrictJson,
} from './strict-json.ts';

/** The same cap as the reference implementation (safetensors' MAX_HEADER_SIZE). */
export const MAX_HEADER_BYTES = 100_000_000;
export const METADATA_KEY = '__metadata__';
const ENTRY_FIELDS = new Set(['dtype', 'shape', 'data_offsets']);

export interface ParsedHeader {
  /** Tensors in header order. */
  tensors: TensorInfo[];
  metadata: Record<string, string>;
}

/** Strict UTF-8 -> strict JSON -> a JSON object; duplicate keys are errors, not last-one-wins. */
export function parseHeaderJson(bytes: Uint8Array, file: string): JsonObject {
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true }).decode(bytes);
  } catch {
    throw new SafetensorsError('header_not_utf8', file, 'header is not valid UTF-8');
  }
  let value: JsonValue;
  try {
    value = parseStrictJson(text);
  } catch (error) {
    if (error instanceof JsonDuplicateKeyError) {
      const [entry] = error.path;
      if (entry === undefined) {
        throw new SafetensorsError(
          'header_duplicate_key',
          file,
          `header names '${error.key}' twice`,
          error.key,
        );
      }
      if (entry === METADATA_KEY) {
        throw new SafetensorsError('metadata_invalid', file, `__metadata__ has the key '${error.key}' twice`);
      }
      throw new SafetensorsError('tensor_duplicate_field', file, `field '${error.key}' appears twice`, entry);
    }
    throw new SafetensorsError(
      'header_invalid_json',
      file,
      `header is not valid JSON: ${(error as Error).message}`,
    );
  }
  if (!isJsonObject(value))
    throw new SafetensorsError('header_not_object', file, 'header is not a JSON object');
  return value;
}

function parseMetadata(value: JsonValue, file: string): Record<string, string> {
  if (!isJsonObject(value))
    throw new SafetensorsError('metadata_invalid', file, '__metadata__ is not an object');
  const metadata: Record<string, string> = {};
  for (const [key, entry] of Object.entries(value)) {
    if (typeof entry !== 'string') {
      throw new SafetensorsError('metadata_invalid', file, `__metadata__ value of '${key}' is not a string`);
    }
    Object.defineProperty(metadata, key, {
      value: entry,
      enumerable: true,
      writable: true,
      configurable: true,
    });
  }
  return metadata;
}

function parseEntry(name: string, value: JsonValue, file: string): TensorInfo {
  if (!isJsonObject(value))
    throw new SafetensorsError('tensor_entry_invalid', file, 'entry is not an object', name);
  for (const field of Object.keys(value)) {
    if (!ENTRY_FIELDS.has(field)) {
      throw new SafetensorsError('tensor_unknown_field', file, `unknown field '${field}'`, name);
    }
  }
  for (const field of ENTRY_FIELDS) {
    if (!Object.hasOwn(value, field)) {
      throw new SafetensorsError('tensor_missing_field', file, `missing field '${field}'`, name);
    }
  }
  const dtype = value.dtype;
  if (!isDType(dtype)) {
    throw new SafetensorsError('tensor_unknown_dtype', file, `unknown dtype ${describe(dtype)}`, name);
  }
  const shape = value.shape;
  if (!Array.isArray(shape))
    throw new SafetensorsError('tensor_invalid_shape', file, 'shape is not an array', name);
  const dims: number[] = [];
  for (const dim of shape) {
    if (!(dim instanceof JsonNumber) || !dim.isSafeNonNegativeInteger()) {
      throw new SafetensorsError(
        'tensor_invalid_shape',
        file,
        `shape dimension ${describe(dim)} is not a non-negative safe integer`,
        name,
      );
    }
    dims.push(dim.value);
  }
  const numel = numelOf(dims);
  const byteLength = numel * DTYPE_BYTES[dtype];
  if (!Number.isSafeInteger(byteLength)) {
    throw new SafetensorsError('tensor_invalid_shape', file, `shape [${dims}] is too large`, name);
  }
  const offsets = value.data_offsets;
  if (
    !Array.isArray(offsets) ||
    offsets.length !== 2 ||
    !offsets.every((o) => o instanceof JsonNumber && o.isSafeNonNegativeInteger())
  ) {
    throw new SafetensorsError(
      'tensor_invalid_offsets',
      file,
      'data_offsets is not a pair of non-negative safe integers',
      name,
    );
  }
  const [start, end] = (offsets as JsonNumber[]).map((o) => o.value);
  if (end < start)
    throw new SafetensorsError(
      'tensor_invalid_offsets',
      file,
      `data_offsets [${start}, ${end}] end before start`,
      name,
    );
  if (end - start !== byteLength) {
    throw new SafetensorsError(
      'tensor_size_mismatch',
      file,
      `data_offsets [${start}, ${end}] hold ${end - start} bytes but ${dtype} [${dims}] needs ${byteLength}`,
      name,
    );
  }
  return { name, dtype, shape: dims, numel, byteLength, dataOffsets: [start, end] };
}

/**
 * Validates a parsed header against a data section of `dataLength` bytes: every entry well formed, and
 * the byte ranges, sorted by offset, tiling [0, dataLength) exactly: no gap, no overlap, no trailing bytes.
 */
export function validateHeader(header: JsonObject, dataLength: number, file: string): ParsedHeader {
  let metadata: Record<string, string> = {};
  const tensors: TensorInfo[] = [];
  for (const [key, value] of Object.entries(header)) {
    if (key === METADATA_KEY) metadata = parseMetadata(value, file);
    else tensors.push(parseEntry(key, value, file));
  }
  const byOffset = [...tensors].sort(
    (a, b) => a.dataOffsets[0] - b.dataOffsets[0] || a.dataOffsets[1] - b.dataOffsets[1],
  );
  let expectedStart = 0;
  for (const tensor of byOffset) {
    const [start, end] = tensor.dataOffsets;
    if (start < expectedStart) {
      throw new SafetensorsError(
        'tensor_offsets_overlap',
        file,
        `data_offsets [${start}, ${end}] overlap the previous tensor (ends at ${expectedStart})`,
        tensor.name,
      );
    }
    if (start > expectedStart) {
      throw new SafetensorsError(
        'tensor_offsets_gap',
        file,
        `data_offsets [${start}, ${end}] leave a gap after byte ${expectedStart}`,
        tensor.name,
      );
    }
    if (end > dataLength) {
      throw new SafetensorsError(
        'tensor_out_of_bounds',
        file,
        `data_offsets [${start}, ${end}] go past the end of the data (${dataLength} bytes)`,
        tensor.name,
      );
    }
    expectedStart = end;
  }
  if (expectedStart !== dataLength) {
    throw new SafetensorsError(
      'trailing_bytes',
      file,
      `${dataLength - expectedStart} bytes after the last tensor`,
    );
  }
  return { tensors, metadata };
}

function describe(value: JsonValue | undefined): string {
  if (value instanceof JsonNumber) return value.text;
  if (value === undefined) return 'undefined';
  return JSON.stringify(value);
}

/** Checks the writer's input: unique names, known dtypes, valid shapes; returns infos with contiguous offsets. */
export function layoutTensors(specs: readonly TensorSpec[], file: string): TensorInfo[] {
  const seen = new Set<string>();
  let offset = 0;
  return specs.map((spec) => {
    const { name, dtype, shape } = spec;
    if (typeof name !== 'string' || name === '' || name === METADATA_KEY) {
      throw new SafetensorsError('invalid_spec', file, `tensor name ${JSON.stringify(name)} is not allowed`);
    }
    if (seen.has(name)) throw new SafetensorsError('invalid_spec', file, 'tensor listed twice', name);
    seen.add(name);
    if (!isDType(dtype))
      throw new SafetensorsError('invalid_spec', file, `unknown dtype ${JSON.stringify(dtype)}`, name);
    if (!Array.isArray(shape) || !shape.every((d) => Number.isSafeInteger(d) && d >= 0)) {
      throw new SafetensorsError(
        'invalid_spec',
        file,
        `shape ${JSON.stringify(shape)} is not a list of non-negative integers`,
        name,
      );
    }
    const numel = numelOf(shape);
    const byteLength = numel * DTYPE_BYTES[dtype as DType];
    if (!Number.isSafeInteger(byteLength))
      throw new SafetensorsError('invalid_spec', file, 'tensor too large', name);
    const info: TensorInfo = {
      name,
      dtype,
      shape: [...shape],
      numel,
      byteLength,
      dataOffsets: [offset, offset + byteLength],
    };
    offset += byteLength;
    return info;
  });
}

/**
 * The 8-byte length plus the header JSON (`__metadata__` first, then tensors in the given order),
 * padded with spaces so the data starts 8-aligned, as the reference writer does.
 */
export function encodeHeader(
  tensors: readonly TensorInfo[],
  metadata: Record<string, string> | undefined,
  file: string,
): Uint8Array {
  const header: Record<string, unknown> = {};
  if (metadata !== undefined) {
    for (const [key, value] of Object.entries(metadata)) {
      if (typeof value !== 'string') {
        throw new SafetensorsError('invalid_spec', file, `metadata value of '${key}' is not a string`);
      }
    }
    header[METADATA_KEY] = metadata;
  }
  for (const t of tensors) {
    Object.defineProperty(header, t.name, {
      value: { dtype: t.dtype, shape: t.shape, data_offsets: t.dataOffsets },
      enumerable: true,
    });
  }
  const json = Buffer.from(JSON.stringify(header), 'utf8');
  const paddedLength = Math.ceil(json.length / 8) * 8;
  const bytes = Buffer.alloc(8 + paddedLength, 0x20);
  bytes.writeBigUInt64LE(BigInt(paddedLength), 0);
  json.copy(bytes, 8);
  return bytes;
}
