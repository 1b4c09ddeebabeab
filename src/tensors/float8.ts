// safetensors' 8-bit floats. F8_E4M3 is torch's float8_e4m3fn: sign, 4 exponent bits (bias 7), 3 mantissa bits,
// no infinities, NaN = S.1111.111, largest finite ±448. F8_E5M2 is IEEE-like: 5 exponent bits (bias 15), 2
// mantissa bits, ±inf = S.11111.00, NaN = S.11111.{01,10,11}, largest finite ±57344. Upcasting is exact (a
// 256-entry table); downcasting rounds to nearest, ties to even, as torch's `.to()` does: E4M3 saturates to ±448
// on overflow and on ±inf (torch 2.13's behaviour), E5M2 overflows to ±inf, NaN keeps its sign.

export interface Float8Format {
  exponentBits: number;
  mantissaBits: number;
  bias: number;
  /** E4M3 (fn): no infinities, only S.1111.111 is NaN, overflow saturates. E5M2: IEEE-like. */
  finiteOnly: boolean;
}

export const E4M3: Float8Format = { exponentBits: 4, mantissaBits: 3, bias: 7, finiteOnly: true };
export const E5M2: Float8Format = { exponentBits: 5, mantissaBits: 2, bias: 15, finiteOnly: false };

/** The value of one bit pattern, from the format's definition. */
export function float8Value(format: Float8Format, bits: number): number {
  const { exponentBits, mantissaBits, bias, finiteOnly } = format;
  const sign = bits & 0x80 ? -1 : 1;
  const exponent = (bits >> mantissaBits) & ((1 << exponentBits) - 1);
  const mantissa = bits & ((1 << mantissaBits) - 1);
  const maxExponent = (1 << exponentBits) - 1;
  if (finiteOnly) {
    if (exponent === maxExponent && mantissa === (1 << mantissaBits) - 1) return Number.NaN;
  } else if (exponent === maxExponent) {
    return mantissa === 0 ? sign * Number.POSITIVE_INFINITY : Number.NaN;
  }
  if (exponent === 0) return sign * mantissa * 2 ** (1 - bias - mantissaBits); // subnormal or zero
  return sign * (1 + mantissa / (1 << mantissaBits)) * 2 ** (exponent - bias);
}

const tables = new Map<Float8Format, Float32Array>();

/** All 256 patterns decoded once; NaN patterns decode to a NaN carrying the pattern's sign. */
export function float8DecodeTable(format: Float8Format): Float32Array {
  let table = tables.get(format);
  if (!table) {
    table = new Float32Array(256);
    const bits = new Uint32Array(table.buffer);
    for (let b = 0; b < 256; b++) {
      const value = float8Value(format, b);
      if (Number.isNaN(value)) bits[b] = (b & 0x80 ? 0x80000000 : 0) | 0x7fc00000;
      else table[b] = Object.is(value, 0) && b & 0x80 ? -0 : value;
    }
    tables.set(format, table);
  }
  return table;
}

/** FP8 bits -> F32 values (exact). */
export function float8ToFloat32(
  format: Float8Format,
  src: Uint8Array,
  out: Float32Array = new Float32Array(src.length),
): Float32Array {
  const table = float8DecodeTable(format);
  const n = src.length;
  for (let i = 0; i < n; i++) out[i] = table[src[i]];
  return out;
}

/** n ≥ 0 rounded to the nearest integer, ties to even. */
function roundHalfEven(n: number): number {
  const floor = Math.floor(n);
  const rest = n - floor;
  if (rest > 0.5) return floor + 1;
  if (rest < 0.5) return floor;
  return floor % 2 === 0 ? floor : floor + 1;
}

/** One F32 value (given with its bits, for the sign of zeros and NaNs) -> FP8 bits. */
function encodeOne(format: Float8Format, value: number, bits32: number): number {
  const { exponentBits, mantissaBits, bias, finiteOnly } = format;
  const sign = bits32 & 0x80000000 ? 0x80 : 0;
  const maxExponent = (1 << exponentBits) - 1;
  const mantissaSteps = 1 << mantissaBits;
  const nan = finiteOnly ? 0x7f : (maxExponent << mantissaBits) | (mantissaSteps - 1);
  const maxFinite = finiteOnly ? 0x7e : ((maxExponent - 1) << mantissaBits) | (mantissaSteps - 1);
  const infinity = maxExponent << mantissaBits;
  if (Number.isNaN(value)) return sign | nan;
  const magnitude = Math.abs(value);
  if (magnitude === Number.POSITIVE_INFINITY) return sign | (finiteOnly ? maxFinite : infinity);
  const minNormal = 2 ** (1 - bias);
  let code: number;
  if (magnitude < minNormal) {
    // Subnormal: a multiple of the smallest step; rounding up to 2^M steps lands on the smallest normal.
    code = roundHalfEven(magnitude / 2 ** (1 - bias - mantissaBits));
  } else {
    let exponent = ((bits32 >>> 23) & 0xff) - 127; // magnitude ≥ minNormal is a normal float32
    let mantissa = roundHalfEven((magnitude / 2 ** exponent - 1) * mantissaSteps); // exact in float64
    if (mantissa === mantissaSteps) {
      mantissa = 0;
      exponent += 1;
    }
    const biased = exponent + bias;
    code = biased >= maxExponent + 1 ? Number.POSITIVE_INFINITY : (biased << mantissaBits) | mantissa;
  }
  if (code > maxFinite) return sign | (finiteOnly ? maxFinite : infinity);
  return sign | code;
}

/** F32 -> FP8 bits, round to nearest even (see the header for overflow, infinities and NaN). */
export function float32ToFloat8(
  format: Float8Format,
  src: Float32Array,
  out: Uint8Array = new Uint8Array(src.length),
): Uint8Array {
  const bits = new Uint32Array(src.buffer, src.byteOffset, src.length);
  const n = src.length;
  for (let i = 0; i < n; i++) out[i] = encodeOne(format, src[i], bits[i]);
  return out;
}
