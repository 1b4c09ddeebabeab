// safetensors' FP8 dtypes: every bit pattern against the formats' definitions and torch's upcast, torch's
// downcast bytes for ~6000 probe values (ties, overflow, ±inf, NaN, subnormals), read through the reader from
// a file safetensors itself wrote (scripts/fixtures/make_fp8_fixtures.py), and merges that write FP8.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { closePlan, executeMerge, parseRecipe, planMerge } from '../../src/merge/index.ts';
import { E4M3, E5M2, float8DecodeTable, float32ToFloat8 } from '../../src/tensors/float8.ts';
import {
  Checkpoint,
  decodeToFloat32,
  encodeFromFloat32,
  SafetensorsFile,
  type Tensor,
  writeSafetensors,
} from '../../src/tensors/index.ts';
import { tempDir } from '../helpers/redis.ts';

const FIXTURE = path.resolve(import.meta.dirname, '../fixtures/fp8/fp8_reference.safetensors');

/** E4M3FN by its definition: S EEEE MMM, bias 7, no infinities, NaN only at S.1111.111. */
function e4m3Definition(bits: number): number {
  const s = bits >> 7 ? -1 : 1;
  const e = (bits >> 3) & 0xf;
  const m = bits & 0x7;
  if (e === 15 && m === 7) return Number.NaN;
  return e === 0 ? s * (m / 8) * 2 ** -6 : s * (1 + m / 8) * 2 ** (e - 7);
}

/** E5M2 by its definition: S EEEEE MM, bias 15, IEEE-like (e = 31: m = 0 is ±inf, otherwise NaN). */
function e5m2Definition(bits: number): number {
  const s = bits >> 7 ? -1 : 1;
  const e = (bits >> 2) & 0x1f;
  const m = bits & 0x3;
  if (e === 31) return m === 0 ? s * Number.POSITIVE_INFINITY : Number.NaN;
  return e === 0 ? s * (m / 4) * 2 ** -14 : s * (1 + m / 4) * 2 ** (e - 15);
}

/** Same value, or both NaN with the same sign bit; -0 and +0 differ. */
function sameFloat(
  actual: number,
  expected: number,
  actualSignBit: boolean,
  expectedSignBit: boolean,
): boolean {
  if (Number.isNaN(expected)) return Number.isNaN(actual) && actualSignBit === expectedSignBit;
  return Object.is(actual, expected);
}

const signBits = (values: Float32Array) => new Uint32Array(values.buffer, values.byteOffset, values.length);

describe('FP8 (F8_E4M3 = float8_e4m3fn, F8_E5M2 = float8_e5m2)', () => {
  let file: SafetensorsFile;
  const read = async (name: string) => file.read(name);
  before(async () => {
    file = await SafetensorsFile.open(FIXTURE);
  });
  after(() => file.close());

  for (const [name, format, definition, tensor] of [
    ['E4M3', E4M3, e4m3Definition, 'all_e4m3'],
    ['E5M2', E5M2, e5m2Definition, 'all_e5m2'],
  ] as const) {
    it(`${name}: all 256 patterns decode as the definition and as torch says, read from a safetensors file`, async () => {
      const patterns: Tensor = await read(tensor);
      assert.equal(patterns.dtype, tensor === 'all_e4m3' ? 'F8_E4M3' : 'F8_E5M2');
      assert.deepEqual(patterns.shape, [256]);
      assert.deepEqual(
        [...(patterns.data as Uint8Array)],
        Array.from({ length: 256 }, (_, i) => i),
      );
      const decoded = decodeToFloat32(patterns);
      const torch = (await read(`${tensor}_f32`)).data as Float32Array;
      const table = float8DecodeTable(format);
      for (let b = 0; b < 256; b++) {
        const expected = definition(b);
        const negative = (b & 0x80) !== 0;
        assert.ok(
          sameFloat(decoded[b], expected, signBits(decoded)[b] >>> 31 === 1, negative),
          `0x${b.toString(16)}`,
        );
        assert.ok(Object.is(table[b], decoded[b]) || (Number.isNaN(table[b]) && Number.isNaN(decoded[b])));
        if (Number.isNaN(expected)) assert.ok(Number.isNaN(torch[b]), `torch: 0x${b.toString(16)} is NaN`);
        else
          assert.ok(
            Object.is(torch[b], expected),
            `torch upcasts 0x${b.toString(16)} to ${torch[b]}, not ${expected}`,
          );
      }
    });
  }

  it('the formats landmarks: E4M3 has no infinities and tops out at 448; E5M2 at 57344, then ±inf', () => {
    const e4 = float8DecodeTable(E4M3);
    const e5 = float8DecodeTable(E5M2);
    assert.equal([...e4].filter((v) => !Number.isFinite(v) && !Number.isNaN(v)).length, 0);
    assert.equal([...e4].filter(Number.isNaN).length, 2); // 0x7f and 0xff
    assert.equal(e4[0x7e], 448);
    assert.equal(e4[0x08], 2 ** -6); // smallest normal
    assert.equal(e4[0x01], 2 ** -9); // smallest subnormal
    assert.ok(Object.is(e4[0x80], -0));
    assert.equal(e5[0x7b], 57344);
    assert.equal(e5[0x7c], Number.POSITIVE_INFINITY);
    assert.equal(e5[0xfc], Number.NEGATIVE_INFINITY);
    assert.equal([...e5].filter(Number.isNaN).length, 6); // 0x7d-0x7f, 0xfd-0xff
    assert.equal(e5[0x01], 2 ** -16);
  });

  for (const [dtype, format, reference] of [
    ['F8_E4M3', E4M3, 'to_e4m3'],
    ['F8_E5M2', E5M2, 'to_e5m2'],
  ] as const) {
    it(`F32 -> ${dtype} gives torch's bytes exactly (round to nearest even, overflow, ±inf, NaN sign)`, async () => {
      const inputs = (await read('inputs')).data as Float32Array;
      const expected = (await read(reference)).data as Uint8Array;
      assert.ok(inputs.length > 6000);
      const encoded = encodeFromFloat32(inputs, dtype) as Uint8Array;
      assert.ok(encoded instanceof Uint8Array);
      assert.deepEqual(encoded, float32ToFloat8(format, inputs));
      const wrong: string[] = [];
      for (let i = 0; i < inputs.length; i++) {
        if (encoded[i] !== expected[i]) {
          wrong.push(
            `${inputs[i]} (0x${signBits(inputs)[i].toString(16)}) -> 0x${encoded[i].toString(16)}, torch 0x${expected[i].toString(16)}`,
          );
        }
      }
      assert.deepEqual(wrong.slice(0, 10), [], `${wrong.length} of ${inputs.length} differ`);
    });
  }

  it('decode then encode gives every non-NaN pattern back', () => {
    for (const format of [E4M3, E5M2]) {
      const table = float8DecodeTable(format);
      const back = float32ToFloat8(format, table);
      for (let b = 0; b < 256; b++)
        if (!Number.isNaN(table[b])) assert.equal(back[b], b, `0x${b.toString(16)}`);
    }
  });
});

describe('merges write FP8 when out_dtype asks', () => {
  const dir = tempDir('lorafuse-fp8');
  after(() => dir.remove());
  const values = Float32Array.from([0.5, -1.25, 3, 100, 1000, -0.001, 2 ** -8, 7.5]);

  for (const [outDtype, dtype, torchDtype] of [
    ['float8_e4m3fn', 'F8_E4M3', 'float8_e4m3fn'],
    ['F8_E5M2', 'F8_E5M2', 'float8_e5m2'],
  ] as const) {
    it(`out_dtype: ${outDtype} writes ${dtype} tensors holding the rounded merge, and torch_dtype ${torchDtype}`, async () => {
      const folder = path.join(dir.dir, `in-${dtype}`);
      await mkdir(folder, { recursive: true });
      // F8 inputs too: they are read and upcast on the way in.
      await writeSafetensors(path.join(folder, 'model.safetensors'), [
        { name: 'w', dtype: 'F32', shape: [8], data: values },
        { name: 'w8', dtype, shape: [8], data: encodeFromFloat32(values, dtype) },
      ]);
      const configJson = JSON.stringify({ model_type: 'mlp', torch_dtype: 'float32' });
      await writeFile(path.join(folder, 'config.json'), configJson);
      const recipe = parseRecipe({
        merge_method: 'linear',
        models: [
          { model: folder, parameters: { weight: 1 } },
          { model: folder, parameters: { weight: 3 } },
        ],
        out_dtype: outDtype,
      });
      const plan = await planMerge(recipe, {
        async openModel(ref) {
          return { checkpoint: await Checkpoint.openFolder(ref), config: JSON.parse(configJson) };
        },
        async openAdapter() {
          throw new Error('no adapters here');
        },
      });
      const out = path.join(dir.dir, `out-${dtype}`);
      try {
        await executeMerge(plan, { outDir: out });
      } finally {
        await closePlan(plan);
      }
      assert.equal(JSON.parse(readFileSync(path.join(out, 'config.json'), 'utf8')).torch_dtype, torchDtype);
      const merged = await Checkpoint.openFolder(out);
      try {
        const format = dtype === 'F8_E4M3' ? E4M3 : E5M2;
        const w = await merged.read('w');
        assert.equal(w.dtype, dtype);
        // linear: (1·x + 3·x) / 4 = x, so the output is x rounded to FP8 once.
        assert.deepEqual(w.data, float32ToFloat8(format, values));
        const w8 = await merged.read('w8');
        assert.equal(w8.dtype, dtype);
        assert.deepEqual(
          w8.data,
          encodeFromFloat32(values, dtype),
          'an FP8 input merged with itself is unchanged',
        );
      } finally {
        await merged.close();
      }
    });
  }
});
