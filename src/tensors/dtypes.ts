// The safetensors element types, their sizes and the typed array each one is held in.

export type DType =
  | 'F64'
  | 'F32'
  | 'F16'
  | 'BF16'
  | 'F8_E4M3'
  | 'F8_E5M2'
  | 'I64'
  | 'I32'
  | 'I16'
  | 'I8'
  | 'U64'
  | 'U32'
  | 'U16'
  | 'U8'
  | 'BOOL';

export type TypedArray =
  | Float64Array
  | Float32Array
  | Uint16Array
  | BigInt64Array
  | BigUint64Array
  | Int32Array
  | Uint32Array
  | Int16Array
  | Int8Array
  | Uint8Array;

export const DTYPE_BYTES: Record<DType, number> = {
  F64: 8,
  F32: 4,
  F16: 2,
  BF16: 2,
  F8_E4M3: 1,
  F8_E5M2: 1,
  I64: 8,
  I32: 4,
  I16: 2,
  I8: 1,
  U64: 8,
  U32: 4,
  U16: 2,
  U8: 1,
  BOOL: 1,
};

export const DTYPES = Object.keys(DTYPE_BYTES) as DType[];

export interface TensorSpec {
  name: string;
  dtype: DType;
  shape: number[];
}

export interface TensorInfo extends TensorSpec {
  numel: number;
  byteLength: number;
  /** Byte range inside the data section (after the 8-byte length and the header), end exclusive. */
  dataOffsets: [number, number];
}

/** F16/BF16 data are Uint16Array raw bits, F8_E4M3/F8_E5M2 Uint8Array raw bits; BOOL is Uint8Array; I64 BigInt64Array; U64 BigUint64Array. */
export interface Tensor {
  dtype: DType;
  shape: number[];
  data: TypedArray;
}

type TypedArrayConstructor = {
  new (buffer: ArrayBufferLike, byteOffset: number, length: number): TypedArray;
  new (length: number): TypedArray;
  readonly BYTES_PER_ELEMENT: number;
};

const ARRAY_TYPES: Record<DType, TypedArrayConstructor> = {
  F64: Float64Array,
  F32: Float32Array,
  F16: Uint16Array,
  BF16: Uint16Array,
  F8_E4M3: Uint8Array,
  F8_E5M2: Uint8Array,
  I64: BigInt64Array,
  I32: Int32Array,
  I16: Int16Array,
  I8: Int8Array,
  U64: BigUint64Array,
  U32: Uint32Array,
  U16: Uint16Array,
  U8: Uint8Array,
  BOOL: Uint8Array,
};

export function isDType(value: unknown): value is DType {
  return typeof value === 'string' && Object.hasOwn(DTYPE_BYTES, value);
}

/** The typed array class that holds a dtype's elements (raw bits for F16/BF16/F8). */
export function arrayTypeOf(dtype: DType): TypedArrayConstructor {
  return ARRAY_TYPES[dtype];
}

/** True when `data` is the typed array class the dtype is held in. */
export function matchesDType(data: TypedArray, dtype: DType): boolean {
  return data instanceof ARRAY_TYPES[dtype];
}

/** Product of the dimensions; NaN when it would not be a safe integer. */
export function numelOf(shape: readonly number[]): number {
  let numel = 1;
  for (const dim of shape) {
    numel *= dim;
    if (!Number.isSafeInteger(numel)) return Number.NaN;
  }
  return numel;
}

/** A typed-array view over bytes whose start is aligned to the element size. */
export function viewBytesAs(bytes: Uint8Array, dtype: DType): TypedArray {
  const size = DTYPE_BYTES[dtype];
  return new ARRAY_TYPES[dtype](bytes.buffer, bytes.byteOffset, bytes.byteLength / size);
}

/** The bytes under a typed array, without copying. */
export function bytesOf(data: TypedArray): Uint8Array {
  return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
}
