// The golden IO case (test/fixtures/golden/io_f16_bf16), checked bit for bit: decoding the three
// files, re-encoding F32 -> F16/BF16, and writing the files back with our writer.

import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import {
  type DType,
  decodeToFloat32,
  encodeFromFloat32,
  SafetensorsFile,
  type Tensor,
  writeSafetensors,
} from '../../src/tensors/index.ts';
import { goldenCaseDir } from '../helpers/golden.ts';
import { tempDir } from '../helpers/redis.ts';

const caseDir = goldenCaseDir('io_f16_bf16');

type JsonFloat = number | 'NaN' | 'Infinity' | '-Infinity';
interface ExpectedFile {
  file: string;
  metadata: Record<string, string>;
  tensors?: Record<
    string,
    { dtype: DType; shape: number[]; bits_u16: number[]; values_float32: JsonFloat[] }
  >;
  header_len: number;
  file_size: number;
  header_json: string;
}
interface Expected {
  source_float32: Record<string, { shape: number[]; values: JsonFloat[] }>;
  files: Record<'F32' | 'F16' | 'BF16', ExpectedFile>;
}

const expected = JSON.parse(readFileSync(path.join(caseDir, 'expected.json'), 'utf8')) as Expected;
const toNumber = (v: JsonFloat): number => (typeof v === 'number' ? v : Number(v));

/** Float32 bit patterns, so -0 vs 0 and NaN compare exactly. */
function bitsOf(values: ArrayLike<number>): number[] {
  const f = Float32Array.from(values);
  return [...new Uint32Array(f.buffer)];
}

let scratch: ReturnType<typeof tempDir>;
before(() => {
  scratch = tempDir('tensors-golden');
});
after(() => scratch.remove());

describe('golden io_f16_bf16', () => {
  test('the F32 source decodes to the expected values, bit for bit', async () => {
    const file = await SafetensorsFile.open(path.join(caseDir, expected.files.F32.file));
    try {
      assert.deepEqual(file.metadata, expected.files.F32.metadata);
      assert.deepEqual(file.names(), Object.keys(expected.source_float32));
      for (const [name, source] of Object.entries(expected.source_float32)) {
        assert.deepEqual(file.info(name).shape, source.shape);
        const values = await file.readFloat32(name);
        assert.deepEqual(bitsOf(values), bitsOf(source.values.map(toNumber)), name);
      }
    } finally {
      await file.close();
    }
  });

  for (const dtype of ['F16', 'BF16'] as const) {
    const spec = expected.files[dtype];

    test(`${dtype}: stored bits and decoded float32 values match`, async () => {
      const file = await SafetensorsFile.open(path.join(caseDir, spec.file));
      try {
        assert.deepEqual(file.metadata, spec.metadata);
        assert.equal(file.headerLength, spec.header_len);
        assert.equal(file.fileSize, spec.file_size);
        for (const [name, want] of Object.entries(spec.tensors!)) {
          const tensor = await file.read(name);
          assert.equal(tensor.dtype, dtype);
          assert.deepEqual(tensor.shape, want.shape);
          assert.ok(tensor.data instanceof Uint16Array);
          assert.deepEqual([...tensor.data], want.bits_u16, `${name} bits`);
          const wantBits = bitsOf(want.values_float32.map(toNumber));
          assert.deepEqual(bitsOf(decodeToFloat32(tensor)), wantBits, `${name} decodeToFloat32`);
          assert.deepEqual(bitsOf(await file.readFloat32(name)), wantBits, `${name} readFloat32`);
        }
      } finally {
        await file.close();
      }
    });

    test(`${dtype}: encoding the F32 source reproduces the stored bits (RNE, subnormals, inf, NaN)`, () => {
      for (const [name, want] of Object.entries(spec.tensors!)) {
        const source = Float32Array.from(expected.source_float32[name].values.map(toNumber));
        const encoded = encodeFromFloat32(source, dtype);
        assert.ok(encoded instanceof Uint16Array);
        assert.deepEqual([...encoded], want.bits_u16, name);
      }
    });
  }

  test('our writer reproduces each file: header length, file size, header JSON and bytes', async () => {
    for (const spec of Object.values(expected.files)) {
      const original = await SafetensorsFile.open(path.join(caseDir, spec.file));
      const tensors: Array<Tensor & { name: string }> = [];
      for (const name of original.names()) tensors.push({ name, ...(await original.read(name)) });
      await original.close();

      const out = path.join(scratch.dir, spec.file);
      await writeSafetensors(out, tensors, spec.metadata);
      const bytes = readFileSync(out);
      const headerLength = Number(bytes.readBigUInt64LE(0));
      assert.equal(headerLength, spec.header_len, spec.file);
      assert.equal(bytes.length, spec.file_size, spec.file);
      const headerText = bytes.subarray(8, 8 + headerLength).toString('utf8');
      assert.equal(headerText.trimEnd(), spec.header_json, spec.file);
      assert.match(headerText.slice(spec.header_json.length), /^ *$/);
      assert.ok(bytes.equals(readFileSync(path.join(caseDir, spec.file))), `${spec.file} differs byte-wise`);
    }
  });
});
