// F16/BF16 conversions checked exhaustively over all 65536 bit patterns, plus every rounding midpoint:
// a midpoint between two neighbours must go to the one with an even mantissa.

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import {
  bf16ToFloat32,
  type DType,
  decodeToFloat32,
  encodeFromFloat32,
  f16ToFloat32,
  float32ToBF16,
  float32ToF16,
} from '../../src/tensors/index.ts';
import { float32ToBF16CountingNonFinite } from '../../src/tensors/float-conversion.ts';

const allPatterns = Uint16Array.from({ length: 65536 }, (_, i) => i);
const isNaN16 = (h: number, expMask: number, mantMask: number) =>
  (h & expMask) === expMask && (h & mantMask) !== 0;

/** The float32 exactly halfway between two float32 values (exact here: both are F16/BF16-representable). */
function midpoint(a: number, b: number): number {
  return Math.fround((a + b) / 2);
}

describe('F16', () => {
  test('decode -> encode is the identity on every non-NaN pattern; NaN becomes 0x7e00 keeping its sign', () => {
    const encoded = float32ToF16(f16ToFloat32(allPatterns));
    for (let h = 0; h < 65536; h++) {
      const want = isNaN16(h, 0x7c00, 0x3ff) ? (h & 0x8000) | 0x7e00 : h;
      if (encoded[h] !== want)
        assert.fail(`pattern 0x${h.toString(16)} encoded to 0x${encoded[h].toString(16)}`);
    }
  });

  test('decodes subnormals, infinities and NaN exactly', () => {
    const decoded = f16ToFloat32(
      Uint16Array.from([0x0001, 0x03ff, 0x0400, 0x7bff, 0x7c00, 0xfc00, 0x7e00, 0x8000]),
    );
    assert.deepEqual(
      [...decoded.slice(0, 6)],
      [2 ** -24, 1023 * 2 ** -24, 2 ** -14, 65504, Infinity, -Infinity],
    );
    assert.ok(Number.isNaN(decoded[6]));
    assert.ok(Object.is(decoded[7], -0));
  });

  test('every midpoint between neighbouring finite values rounds to the even neighbour', () => {
    const values = f16ToFloat32(allPatterns);
    const mids: number[] = [];
    const want: number[] = [];
    for (let h = 0; h < 0x7bff; h++) {
      for (const sign of [0, 0x8000]) {
        mids.push(midpoint(values[h | sign], values[(h + 1) | sign]));
        want.push((h & 1 ? h + 1 : h) | sign);
      }
    }
    const encoded = float32ToF16(Float32Array.from(mids));
    for (let i = 0; i < want.length; i++) {
      if (encoded[i] !== want[i])
        assert.fail(`midpoint ${mids[i]} -> 0x${encoded[i].toString(16)}, want 0x${want[i].toString(16)}`);
    }
  });

  test('just above a midpoint rounds up, overflow goes to inf, tiny values to signed zero', () => {
    const above = Math.fround(1 + 2 ** -11 + 2 ** -20); // just over the 1 / 1+2^-10 midpoint
    const encoded = float32ToF16(
      Float32Array.from([above, 65519.99, 65520, 1e10, -1e10, 2 ** -25, -(2 ** -25), 2 ** -25 * 1.0001]),
    );
    assert.deepEqual([...encoded], [0x3c01, 0x7bff, 0x7c00, 0x7c00, 0xfc00, 0x0000, 0x8000, 0x0001]);
  });
});

describe('BF16', () => {
  test('decode -> encode is the identity on every non-NaN pattern; NaN becomes canonical 0x7fc0', () => {
    const encoded = float32ToBF16(bf16ToFloat32(allPatterns));
    for (let h = 0; h < 65536; h++) {
      const want = isNaN16(h, 0x7f80, 0x7f) ? 0x7fc0 : h;
      if (encoded[h] !== want)
        assert.fail(`pattern 0x${h.toString(16)} encoded to 0x${encoded[h].toString(16)}`);
    }
  });

  test('every midpoint between neighbouring finite values rounds to the even neighbour', () => {
    const values = bf16ToFloat32(allPatterns);
    const mids: number[] = [];
    const want: number[] = [];
    for (let h = 0; h < 0x7f7f; h++) {
      for (const sign of [0, 0x8000]) {
        mids.push(midpoint(values[h | sign], values[(h + 1) | sign]));
        want.push((h & 1 ? h + 1 : h) | sign);
      }
    }
    const encoded = float32ToBF16(Float32Array.from(mids));
    for (let i = 0; i < want.length; i++) {
      if (encoded[i] !== want[i])
        assert.fail(`midpoint ${mids[i]} -> 0x${encoded[i].toString(16)}, want 0x${want[i].toString(16)}`);
    }
  });

  test('the largest finite values round to inf past the last midpoint', () => {
    const max = bf16ToFloat32(Uint16Array.from([0x7f7f]))[0];
    const encoded = float32ToBF16(Float32Array.from([max, 3.4028235e38, -3.4028235e38]));
    assert.deepEqual([...encoded], [0x7f7f, 0x7f80, 0xff80]);
  });
});

describe('other dtypes', () => {
  test('integers truncate toward zero and saturate; NaN -> 0; BOOL is value !== 0', () => {
    const values = Float32Array.from([1.9, -1.9, 300, -300, Number.NaN, 0, Infinity]);
    const cases: Array<[DType, Array<number | bigint>]> = [
      ['I8', [1, -1, 127, -128, 0, 0, 127]],
      ['U8', [1, 0, 255, 0, 0, 0, 255]],
      ['I16', [1, -1, 300, -300, 0, 0, 32767]],
      ['U16', [1, 0, 300, 0, 0, 0, 65535]],
      ['I32', [1, -1, 300, -300, 0, 0, 2147483647]],
      ['U32', [1, 0, 300, 0, 0, 0, 4294967295]],
      ['I64', [1n, -1n, 300n, -300n, 0n, 0n, 9223372036854774784n]],
      ['U64', [1n, 0n, 300n, 0n, 0n, 0n, 18446744073709549568n]],
      ['BOOL', [1, 1, 1, 1, 1, 0, 1]],
    ];
    for (const [dtype, want] of cases) {
      const encoded = encodeFromFloat32(values, dtype);
      assert.deepEqual([...encoded], want, dtype);
    }
  });

  test('decodeToFloat32 widens every numeric dtype; F32 is returned without a copy', () => {
    const f32 = Float32Array.from([1.5, -2]);
    assert.equal(decodeToFloat32({ dtype: 'F32', shape: [2], data: f32 }), f32);
    assert.deepEqual(
      [...decodeToFloat32({ dtype: 'F64', shape: [2], data: Float64Array.from([0.1, -3]) })],
      [Math.fround(0.1), -3],
    );
    assert.deepEqual(
      [...decodeToFloat32({ dtype: 'I64', shape: [2], data: BigInt64Array.from([-5n, 7n]) })],
      [-5, 7],
    );
    assert.deepEqual(
      [...decodeToFloat32({ dtype: 'U8', shape: [2], data: Uint8Array.from([255, 0]) })],
      [255, 0],
    );
    assert.deepEqual(
      [...decodeToFloat32({ dtype: 'I16', shape: [2], data: Int16Array.from([-32768, 5]) })],
      [-32768, 5],
    );
  });
});

describe('decoding layouts', () => {
  test('odd lengths and 16-bit arrays at a 2-byte (not 4-byte) offset decode the same as aligned ones', () => {
    const patterns = Uint16Array.from([0x3f80, 0xc000, 0x7fc0, 0x0001, 0x3c00, 0x8000, 0x7bff]);
    const wantBF16 = [...bf16ToFloat32(patterns)];
    const wantF16 = [...f16ToFloat32(patterns)];
    const shifted = new Uint16Array(patterns.length + 1);
    shifted.set(patterns, 1);
    const offsetView = shifted.subarray(1);
    assert.equal(offsetView.byteOffset % 4, 2);
    assert.deepEqual([...bf16ToFloat32(offsetView)].map(String), wantBF16.map(String));
    assert.deepEqual([...f16ToFloat32(offsetView)].map(String), wantF16.map(String));
    assert.deepEqual(
      [...bf16ToFloat32(patterns.subarray(0, 3))].map(String),
      wantBF16.slice(0, 3).map(String),
    );
    assert.deepEqual(wantBF16.slice(0, 2), [1, -2]);
  });
});

describe('encode helpers used by the merge', () => {
  test('float32ToBF16CountingNonFinite gives float32ToBF16 bits and counts NaN and ±Inf', () => {
    // Every BF16 pattern widened, plus F32 patterns between them (rounding cases) and float32 NaN payloads.
    const bits = new Uint32Array(65536 * 3);
    for (let h = 0; h < 65536; h++) {
      bits[3 * h] = h << 16;
      bits[3 * h + 1] = (h << 16) | 0x8000;
      bits[3 * h + 2] = (h << 16) | 0x7fff;
    }
    const values = new Float32Array(bits.buffer);
    const { data, nonFinite } = float32ToBF16CountingNonFinite(values);
    assert.deepEqual(data, float32ToBF16(values));
    let expected = 0;
    for (const b of bits) if ((b & 0x7f800000) === 0x7f800000) expected++;
    assert.equal(nonFinite, expected);
  });

  test('F16 NaN payloads decode to the same float32 bits on every call (bits are copied, not floats)', () => {
    const nans = Uint16Array.from({ length: 0x400 * 2 - 2 }, (_, i) =>
      i < 0x3ff ? 0x7c01 + i : 0xfc01 + i - 0x3ff,
    );
    const first = new Uint32Array(f16ToFloat32(nans).buffer);
    for (let round = 0; round < 50; round++) {
      // Many calls, so the decode loop runs in every JIT tier.
      assert.deepEqual(new Uint32Array(f16ToFloat32(nans).buffer), first);
    }
    for (let i = 0; i < nans.length; i++) {
      const h = nans[i];
      const want = (((h & 0x8000) << 16) | 0x7f800000 | ((h & 0x3ff) << 13)) >>> 0;
      assert.equal(first[i], want, `F16 ${h.toString(16)}`);
    }
  });
});
