// F32 <-> every dtype. F16/BF16 round to nearest, ties to even (as torch `.to()`), keep subnormals,
// overflow to ±inf, and write one canonical quiet NaN (F8 formats: float8.ts). These loops sit on the merge hot path, so
// they work on 32-bit views of the float bits instead of going through DataView or Math.

import { HOST_IS_LITTLE_ENDIAN } from './byte-order.ts';
import { arrayTypeOf, type DType, type Tensor, type TypedArray } from './dtypes.ts';
import { E4M3, E5M2, float32ToFloat8, float8ToFloat32 } from './float8.ts';

const F16_QUIET_NAN = 0x7e00;
const BF16_QUIET_NAN = 0x7fc0;

let f16Table: Float32Array | undefined;

/** All 65536 F16 bit patterns decoded once (256 KiB): a table lookup beats bit twiddling per element. */
function f16DecodeTable(): Float32Array {
  if (f16Table) return f16Table;
  const table = new Float32Array(65536);
  const bits = new Uint32Array(table.buffer);
  for (let h = 0; h < 65536; h++) {
    const sign = (h & 0x8000) << 16;
    const exponent = (h >>> 10) & 0x1f;
    const mantissa = h & 0x3ff;
    if (exponent === 0) {
      const magnitude = mantissa * 2 ** -24; // subnormal (or zero): exact in F32
      table[h] = sign ? -magnitude : magnitude;
    } else if (exponent === 0x1f) {
      bits[h] = sign | 0x7f800000 | (mantissa << 13); // inf, or NaN keeping its payload
    } else {
      bits[h] = sign | ((exponent + 112) << 23) | (mantissa << 13);
    }
  }
  f16Table = table;
  return table;
}

function float32Bits(data: Float32Array): Uint32Array {
  return new Uint32Array(data.buffer, data.byteOffset, data.length);
}

/** F32 -> BF16 bits, RNE; any NaN becomes 0x7fc0 (torch's canonical BF16 NaN). */
export function float32ToBF16(
  src: Float32Array,
  out: Uint16Array = new Uint16Array(src.length),
): Uint16Array {
  const bits = float32Bits(src);
  const n = bits.length;
  for (let i = 0; i < n; i++) {
    const x = bits[i];
    out[i] = (x & 0x7fffffff) > 0x7f800000 ? BF16_QUIET_NAN : (x + 0x7fff + ((x >>> 16) & 1)) >>> 16;
  }
  return out;
}

/**
 * float32ToBF16 that also counts NaN and ±Inf inputs, in the same pass (the merge reports them; a
 * separate scan would read the whole tensor again).
 */
export function float32ToBF16CountingNonFinite(
  src: Float32Array,
  out: Uint16Array = new Uint16Array(src.length),
): { data: Uint16Array; nonFinite: number } {
  const bits = float32Bits(src);
  const n = bits.length;
  let nonFinite = 0;
  for (let i = 0; i < n; i++) {
    const x = bits[i];
    const magnitude = x & 0x7fffffff;
    if (magnitude >= 0x7f800000) {
      nonFinite++;
      out[i] = magnitude > 0x7f800000 ? BF16_QUIET_NAN : x >>> 16;
    } else out[i] = (x + 0x7fff + ((x >>> 16) & 1)) >>> 16;
  }
  return { data: out, nonFinite };
}

const scratchFloat = new Float32Array(1);
const scratchBits = new Uint32Array(scratchFloat.buffer);
// Adding this float shifts an F16-subnormal-sized value so that the F32 adder does the RNE for us.
const DENORM_MAGIC_BITS = (127 - 15 + (23 - 10) + 1) << 23;
scratchBits[0] = DENORM_MAGIC_BITS;
const DENORM_MAGIC = scratchFloat[0];

/** F32 -> F16 bits, RNE; NaN becomes 0x7e00 with the input's sign, as torch does. */
export function float32ToF16(src: Float32Array, out: Uint16Array = new Uint16Array(src.length)): Uint16Array {
  const bits = float32Bits(src);
  const n = bits.length;
  for (let i = 0; i < n; i++) {
    const x = bits[i];
    const sign = (x >>> 16) & 0x8000;
    const magnitude = x & 0x7fffffff;
    let h: number;
    if (magnitude >= 0x47800000) {
      // >= 65536 in magnitude (already past the rounding range), inf or NaN
      h = magnitude > 0x7f800000 ? F16_QUIET_NAN : 0x7c00;
    } else if (magnitude < 0x38800000) {
      // below the smallest F16 normal: F16 subnormal or zero
      scratchBits[0] = magnitude;
      scratchFloat[0] += DENORM_MAGIC;
      h = scratchBits[0] - DENORM_MAGIC_BITS;
    } else {
      const mantissaOdd = (magnitude >>> 13) & 1;
      h = (magnitude - 0x38000000 + 0xfff + mantissaOdd) >>> 13; // rebias 127 -> 15, round, may carry to inf
    }
    out[i] = sign | h;
  }
  return out;
}

/** Whole 32-bit words over a 16-bit array when its start allows it: two elements per load or store. */
function pairedWords(data: Uint16Array): Uint32Array | null {
  return HOST_IS_LITTLE_ENDIAN && (data.byteOffset & 3) === 0
    ? new Uint32Array(data.buffer, data.byteOffset, data.length >>> 1)
    : null;
}

export function f16ToFloat32(
  src: Uint16Array,
  out: Float32Array = new Float32Array(src.length),
): Float32Array {
  // Bits, not floats: a float32 NaN passed through a JS number may come back quieted or not
  // depending on the JIT tier, so a signalling F16 NaN's payload would vary from run to run.
  const table = float32Bits(f16DecodeTable());
  const outBits = float32Bits(out);
  const n = src.length;
  const words = pairedWords(src);
  if (!words) {
    for (let i = 0; i < n; i++) outBits[i] = table[src[i]];
    return out;
  }
  const pairs = words.length;
  for (let i = 0, j = 0; i < pairs; i++, j += 2) {
    const w = words[i];
    outBits[j] = table[w & 0xffff];
    outBits[j + 1] = table[w >>> 16];
  }
  if (n & 1) outBits[n - 1] = table[src[n - 1]];
  return out;
}

export function bf16ToFloat32(
  src: Uint16Array,
  out: Float32Array = new Float32Array(src.length),
): Float32Array {
  const outBits = float32Bits(out);
  const n = src.length;
  const words = pairedWords(src);
  if (!words) {
    for (let i = 0; i < n; i++) outBits[i] = src[i] << 16;
    return out;
  }
  const pairs = words.length;
  for (let i = 0, j = 0; i < pairs; i++, j += 2) {
    const w = words[i];
    outBits[j] = w << 16;
    outBits[j + 1] = w & 0xffff0000;
  }
  if (n & 1) outBits[n - 1] = src[n - 1] << 16;
  return out;
}

/**
 * Decodes `src` (the raw elements of `dtype`) into `out`. Safe in place when `src` occupies the tail of
 * `out`'s bytes and the element size is at most 4: every source word is read before a write reaches it
 * (for 16-bit pairs: output bytes 8i..8i+7 end before source word i+1 at 2n+4i+4).
 */
export function decodeIntoFloat32(dtype: DType, src: TypedArray, out: Float32Array): Float32Array {
  switch (dtype) {
    case 'F32':
      if (src !== out) out.set(src as Float32Array);
      return out;
    case 'BF16':
      return bf16ToFloat32(src as Uint16Array, out);
    case 'F16':
      return f16ToFloat32(src as Uint16Array, out);
    case 'F8_E4M3':
      return float8ToFloat32(E4M3, src as Uint8Array, out);
    case 'F8_E5M2':
      return float8ToFloat32(E5M2, src as Uint8Array, out);
    case 'I64':
    case 'U64': {
      const big = src as BigInt64Array | BigUint64Array;
      for (let i = 0; i < big.length; i++) out[i] = Number(big[i]);
      return out;
    }
    default: {
      // F64 and the integer types: the typed-array element conversion is exact or RNE to F32
      const numbers = src as Float64Array | Int32Array | Uint32Array | Int16Array | Int8Array | Uint8Array;
      const n = numbers.length;
      for (let i = 0; i < n; i++) out[i] = numbers[i];
      return out;
    }
  }
}

/**
 * Any numeric tensor -> F32 values. An F32 tensor is returned as its own data (no copy): copy it
 * before mutating if the tensor is still in use.
 */
export function decodeToFloat32(tensor: Tensor): Float32Array {
  if (tensor.dtype === 'F32') return tensor.data as Float32Array;
  return decodeIntoFloat32(tensor.dtype, tensor.data, new Float32Array(tensor.data.length));
}

function clampTruncate(value: number, min: number, max: number): number {
  if (Number.isNaN(value)) return 0;
  const truncated = Math.trunc(value);
  return Math.max(min, Math.min(truncated, max));
}

const INTEGER_RANGES: Partial<Record<DType, [number, number]>> = {
  I32: [-(2 ** 31), 2 ** 31 - 1],
  I16: [-(2 ** 15), 2 ** 15 - 1],
  I8: [-(2 ** 7), 2 ** 7 - 1],
  U32: [0, 2 ** 32 - 1],
  U16: [0, 2 ** 16 - 1],
  U8: [0, 2 ** 8 - 1],
};

/**
 * F32 values -> `dtype`'s typed array. F16/BF16/F8 round to nearest even; integers truncate toward zero
 * and saturate (NaN -> 0); BOOL is value !== 0. F32 returns `data` itself (no copy).
 */
export function encodeFromFloat32(data: Float32Array, dtype: DType): TypedArray {
  switch (dtype) {
    case 'F32':
      return data;
    case 'F64':
      return Float64Array.from(data);
    default:
      return encodeFloat32Into(data, dtype, new (arrayTypeOf(dtype))(data.length));
  }
}

/**
 * encodeFromFloat32 into a caller-given array of `dtype`'s class and data.length elements (the
 * merge's pooled output), with the same conversions.
 */
export function encodeFloat32Into(data: Float32Array, dtype: DType, out: TypedArray): TypedArray {
  switch (dtype) {
    case 'F32':
      if (out !== data) (out as Float32Array).set(data);
      return out;
    case 'BF16':
      return float32ToBF16(data, out as Uint16Array);
    case 'F16':
      return float32ToF16(data, out as Uint16Array);
    case 'F8_E4M3':
      return float32ToFloat8(E4M3, data, out as Uint8Array);
    case 'F8_E5M2':
      return float32ToFloat8(E5M2, data, out as Uint8Array);
    case 'F64': {
      const wide = out as Float64Array;
      for (let i = 0; i < data.length; i++) wide[i] = data[i];
      return out;
    }
    case 'BOOL': {
      const bools = out as Uint8Array;
      for (let i = 0; i < data.length; i++) bools[i] = data[i] !== 0 ? 1 : 0;
      return out;
    }
    case 'I64':
    case 'U64': {
      const big = out as BigInt64Array | BigUint64Array;
      const [min, max] = dtype === 'I64' ? [-(2 ** 63), 2 ** 63 - 1024] : [0, 2 ** 64 - 2048];
      for (let i = 0; i < data.length; i++) big[i] = BigInt(clampTruncate(data[i], min, max));
      return out;
    }
    default: {
      const [min, max] = INTEGER_RANGES[dtype]!;
      const ints = out as Int32Array | Uint32Array | Int16Array | Uint16Array | Int8Array | Uint8Array;
      for (let i = 0; i < data.length; i++) ints[i] = clampTruncate(data[i], min, max);
      return out;
    }
  }
}
