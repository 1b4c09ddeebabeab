// Writer -> reader round trips for every dtype, a misaligned file, and the writer's own checks.

import assert from 'node:assert/strict';
import { existsSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { E4M3, float8DecodeTable } from '../../src/tensors/float8.ts';
import {
  arrayTypeOf,
  DTYPE_BYTES,
  DTYPES,
  type DType,
  decodeToFloat32,
  SafetensorsError,
  SafetensorsFile,
  SafetensorsWriter,
  type Tensor,
  writeSafetensors,
} from '../../src/tensors/index.ts';
import { tempDir } from '../helpers/redis.ts';
import { headerText, rawSafetensors, writeRaw } from './raw-file.ts';

let scratch: ReturnType<typeof tempDir>;
before(() => {
  scratch = tempDir('tensors-roundtrip');
});
after(() => scratch.remove());

/** Deterministic bytes for a dtype, covering the full bit range (sign bits, high bytes). */
function sampleTensor(dtype: DType, shape: number[], seed: number): Tensor {
  const numel = shape.reduce((a, b) => a * b, 1);
  const bytes = new Uint8Array(numel * DTYPE_BYTES[dtype]);
  let state = seed;
  for (let i = 0; i < bytes.length; i++) {
    state = (Math.imul(state, 1103515245) + 12345) >>> 0;
    bytes[i] = state >>> 24;
  }
  if (dtype === 'BOOL') for (let i = 0; i < bytes.length; i++) bytes[i] &= 1;
  const Type = arrayTypeOf(dtype);
  return { dtype, shape, data: new Type(bytes.buffer, 0, numel) };
}

function sameBytes(a: Tensor['data'], b: Tensor['data']): boolean {
  return Buffer.from(a.buffer, a.byteOffset, a.byteLength).equals(
    Buffer.from(b.buffer, b.byteOffset, b.byteLength),
  );
}

describe('round trip', () => {
  test('every dtype survives write -> read bit for bit, with its typed array and metadata', async () => {
    const tensors = DTYPES.map((dtype, i) => ({
      name: `t.${dtype.toLowerCase()}`,
      ...sampleTensor(dtype, [3, 5], i + 1),
    }));
    tensors.push(
      { name: 'scalar', ...sampleTensor('F32', [], 99) },
      { name: 'empty', ...sampleTensor('I8', [4, 0], 7) },
    );
    const file = path.join(scratch.dir, 'all.safetensors');
    await writeSafetensors(file, tensors, { format: 'pt', note: 'ü → ✓' });

    const reader = await SafetensorsFile.open(file);
    try {
      assert.deepEqual(reader.metadata, { format: 'pt', note: 'ü → ✓' });
      assert.deepEqual(
        reader.names(),
        tensors.map((t) => t.name),
      );
      assert.equal((8 + reader.headerLength) % 8, 0, 'data start is 8-aligned');
      for (const t of tensors) {
        const read = await reader.read(t.name);
        assert.equal(read.dtype, t.dtype);
        assert.deepEqual(read.shape, t.shape);
        assert.equal(read.data.constructor, t.data.constructor, t.name);
        assert.ok(sameBytes(read.data, t.data), t.name);
        const info = reader.info(t.name);
        assert.equal(info.numel, t.data.length);
        assert.equal(info.byteLength, t.data.byteLength);
      }
      assert.deepEqual([...(await reader.readFloat32('scalar'))].length, 1);
      const written = (name: string) => tensors.find((t) => t.name === name)!.data;
      assert.deepEqual([...(await reader.readFloat32('t.i16'))], [...(written('t.i16') as Int16Array)]);
      assert.deepEqual([...(await reader.readFloat32('t.u8'))], [...(written('t.u8') as Uint8Array)]);
      assert.deepEqual(
        [...(await reader.readFloat32('t.i64'))],
        [...(written('t.i64') as BigInt64Array)].map((v) => Math.fround(Number(v))),
      );
      const e4m3 = float8DecodeTable(E4M3);
      assert.deepEqual(
        [...(await reader.readFloat32('t.f8_e4m3'))],
        [...(written('t.f8_e4m3') as Uint8Array)].map((b) => e4m3[b]),
      );
    } finally {
      await reader.close();
    }
  });

  test('a misaligned file (data start and offsets not multiples of the element size) reads correctly', async () => {
    // header of odd length and a 3-byte tensor first, so the F32/F64/I64 bytes sit at odd file offsets
    const f32 = Float32Array.from([1.5, -2.25, 3e-40]);
    const f64 = Float64Array.from([Math.PI, -0]);
    const i64 = BigInt64Array.from([-(2n ** 62n), 5n]);
    const bf16 = Uint16Array.from([0x3f80, 0xc000]);
    const json = headerText({
      pad: { dtype: 'U8', shape: [3], data_offsets: [0, 3] },
      f32: { dtype: 'F32', shape: [3], data_offsets: [3, 15] },
      f64: { dtype: 'F64', shape: [2], data_offsets: [15, 31] },
      i64: { dtype: 'I64', shape: [2], data_offsets: [31, 47] },
      bf16: { dtype: 'BF16', shape: [2], data_offsets: [47, 51] },
    });
    const header = json.length % 2 === 1 ? json : `${json} `;
    assert.equal((8 + header.length) % 2, 1, 'data starts at an odd file offset');
    const data = Buffer.concat([
      Buffer.from([9, 8, 7]),
      ...[f32, f64, i64, bf16].map((a) => Buffer.from(a.buffer)),
    ]);
    const file = writeRaw(scratch.dir, 'misaligned.safetensors', rawSafetensors(header, data));
    const reader = await SafetensorsFile.open(file);
    try {
      assert.deepEqual([...(await reader.read('f32')).data], [...f32]);
      assert.ok(Object.is((await reader.read('f64')).data[1], -0));
      assert.deepEqual([...(await reader.read('f64')).data], [...f64]);
      assert.deepEqual([...(await reader.read('i64')).data], [...i64]);
      assert.deepEqual([...(await reader.readFloat32('f32'))], [...f32]);
      assert.deepEqual([...(await reader.readFloat32('bf16'))], [1, -2]);
      assert.deepEqual([...(await reader.readFloat32('f64'))], [Math.fround(Math.PI), -0]);
      assert.deepEqual([...(await reader.read('pad')).data], [9, 8, 7]);
    } finally {
      await reader.close();
    }
  });

  test('readFloat32 (widened in place) equals decodeToFloat32(read) for every narrow dtype, odd and even lengths', async () => {
    const dtypes: DType[] = ['BF16', 'F16', 'I8', 'U8', 'I16', 'U16', 'BOOL', 'I32', 'U32', 'F32'];
    const tensors = dtypes.flatMap((dtype, i) => [
      { name: `${dtype}.even`, ...sampleTensor(dtype, [1000], 2 * i + 1) },
      { name: `${dtype}.odd`, ...sampleTensor(dtype, [1001], 2 * i + 2) },
    ]);
    const file = path.join(scratch.dir, 'widen.safetensors');
    await writeSafetensors(file, tensors);
    const reader = await SafetensorsFile.open(file);
    try {
      for (const t of tensors) {
        const widened = await reader.readFloat32(t.name);
        const want = decodeToFloat32(await reader.read(t.name));
        assert.ok(
          Buffer.from(widened.buffer).equals(Buffer.from(want.buffer, want.byteOffset, want.byteLength)),
          t.name,
        );
      }
    } finally {
      await reader.close();
    }
  });

  test('readahead: in-order, out-of-order and repeated reads return the same data as without it', async () => {
    const tensors = ['BF16', 'F32', 'F16', 'I64', 'BF16', 'U8'].map((dtype, i) => ({
      name: `t${i}`,
      ...sampleTensor(dtype as DType, [257 + i], i + 11),
    }));
    const file = path.join(scratch.dir, 'readahead.safetensors');
    await writeSafetensors(file, tensors);
    const plain = await SafetensorsFile.open(file, { readahead: false });
    const ahead = await SafetensorsFile.open(file);
    try {
      const order = [0, 1, 2, 2, 3, 5, 4, 0, 1, 2, 3, 4, 5];
      for (const i of order) {
        const name = tensors[i].name;
        const [a, b] = [await ahead.readFloat32(name), await plain.readFloat32(name)];
        assert.ok(
          Buffer.from(a.buffer, a.byteOffset, a.byteLength).equals(Buffer.from(b.buffer)),
          `${name} readFloat32`,
        );
        assert.ok(sameBytes((await ahead.read(name)).data, tensors[i].data), `${name} read`);
      }
      // concurrent reads of consecutive tensors (as a planner reading several inputs at once does)
      const all = await Promise.all(tensors.map((t) => ahead.read(t.name)));
      for (const [i, t] of all.entries()) assert.ok(sameBytes(t.data, tensors[i].data), tensors[i].name);
      await ahead.read('t0'); // leaves a read-ahead of t1 in flight for close()
    } finally {
      await ahead.close();
      await plain.close();
    }
  });

  test('readFloat32Into reuses one caller-owned array and matches readFloat32 (in order, read ahead or not)', async () => {
    const dtypes: DType[] = ['BF16', 'F16', 'F32', 'I64', 'U8', 'BF16', 'F64', 'I32'];
    const tensors = dtypes.map((dtype, i) => ({ name: `r${i}`, ...sampleTensor(dtype, [33, 31], 40 + i) }));
    const file = path.join(scratch.dir, 'into.safetensors');
    await writeSafetensors(file, tensors);
    for (const readahead of [true, false]) {
      const reader = await SafetensorsFile.open(file, { readahead });
      const reference = await SafetensorsFile.open(file, { readahead: false });
      try {
        const target = new Float32Array(33 * 31);
        for (const i of [0, 1, 2, 3, 4, 5, 6, 7, 0, 2, 1]) {
          const name = tensors[i].name;
          if (i === 1) await reader.readFloat32(name); // leaves a widened read-ahead of the next tensor
          const got = await reader.readFloat32Into(name, target);
          assert.equal(got, target);
          const want = await reference.readFloat32(name);
          assert.ok(
            Buffer.from(target.buffer).equals(Buffer.from(want.buffer, want.byteOffset, want.byteLength)),
            `${name} readahead=${readahead}`,
          );
        }
        await assert.rejects(reader.readFloat32Into('r0', new Float32Array(5)), (e: unknown) => {
          return e instanceof SafetensorsError && e.code === 'target_size_mismatch' && e.tensor === 'r0';
        });
      } finally {
        await reader.close();
        await reference.close();
      }
    }
  });

  test('the reader reads one tensor at its offset, not the whole file', async () => {
    const file = path.join(scratch.dir, 'big.safetensors');
    const big = new Float32Array(1 << 20).fill(1);
    await writeSafetensors(file, [
      { name: 'small', dtype: 'F32', shape: [2], data: Float32Array.from([4, 5]) },
      { name: 'big', dtype: 'F32', shape: [1 << 20], data: big },
    ]);
    const reader = await SafetensorsFile.open(file);
    const small = await reader.read('small');
    await reader.close();
    assert.equal(small.data.buffer.byteLength, 8, 'the returned buffer holds only that tensor');
    assert.deepEqual([...small.data], [4, 5]);
  });
});

describe('SafetensorsWriter', () => {
  const specs = [
    { name: 'a', dtype: 'F32' as const, shape: [2] },
    { name: 'b', dtype: 'BF16' as const, shape: [3] },
  ];

  async function expectCode(promise: Promise<unknown>, code: string): Promise<void> {
    await assert.rejects(promise, (e: unknown) => e instanceof SafetensorsError && e.code === code);
  }

  test('writes the header first: a file with only the header is on disk before any tensor', async () => {
    const file = path.join(scratch.dir, 'streamed.safetensors');
    const writer = await SafetensorsWriter.create(file, specs, { a: 'b' });
    const headerOnly = readFileSync(file);
    const headerLength = Number(headerOnly.readBigUInt64LE(0));
    assert.equal(headerOnly.length, 8 + headerLength);
    assert.equal(headerLength % 8, 0);
    await writer.write('a', Float32Array.from([1, 2]));
    await writer.write('b', Uint16Array.from([1, 2, 3]));
    await writer.close();
    assert.equal(statSync(file).size, 8 + headerLength + 8 + 6);
  });

  test('rejects tensors out of order, with the wrong array type or the wrong size', async () => {
    const file = path.join(scratch.dir, 'checks.safetensors');
    const writer = await SafetensorsWriter.create(file, specs);
    await expectCode(writer.write('b', Uint16Array.from([1, 2, 3])), 'writer_order');
    await expectCode(writer.write('a', Uint16Array.from([1, 2, 3, 4])), 'writer_dtype_mismatch');
    await expectCode(writer.write('a', Float32Array.from([1, 2, 3])), 'writer_size_mismatch');
    await writer.abort();
  });

  test('rejects invalid specs before creating a file', async () => {
    const file = path.join(scratch.dir, 'invalid.safetensors');
    await expectCode(SafetensorsWriter.create(file, [specs[0], specs[0]]), 'invalid_spec');
    await expectCode(
      SafetensorsWriter.create(file, [{ name: 'x', dtype: 'F8' as DType, shape: [1] }]),
      'invalid_spec',
    );
    await expectCode(
      SafetensorsWriter.create(file, [{ name: 'x', dtype: 'F32', shape: [1.5] }]),
      'invalid_spec',
    );
    await expectCode(
      SafetensorsWriter.create(file, [{ name: '__metadata__', dtype: 'F32', shape: [1] }]),
      'invalid_spec',
    );
    assert.equal(existsSync(file), false);
  });

  test('close() with a tensor missing fails and removes the file', async () => {
    const file = path.join(scratch.dir, 'incomplete.safetensors');
    const writer = await SafetensorsWriter.create(file, specs);
    await writer.write('a', Float32Array.from([1, 2]));
    await assert.rejects(
      writer.close(),
      (e: unknown) => e instanceof SafetensorsError && e.code === 'writer_incomplete' && e.tensor === 'b',
    );
    assert.equal(existsSync(file), false);
  });

  test('abort() leaves nothing behind, and the writer refuses further writes', async () => {
    const file = path.join(scratch.dir, 'aborted.safetensors');
    const writer = await SafetensorsWriter.create(file, specs);
    await writer.write('a', Float32Array.from([1, 2]));
    assert.equal(existsSync(file), true);
    await writer.abort();
    assert.equal(existsSync(file), false);
    await expectCode(writer.write('b', Uint16Array.from([1, 2, 3])), 'writer_closed');
    await writer.abort();
  });

  test('writeSafetensors removes the partial file when a tensor is wrong', async () => {
    const file = path.join(scratch.dir, 'bad-tensor.safetensors');
    await expectCode(
      writeSafetensors(file, [
        { name: 'a', dtype: 'F32', shape: [2], data: Float32Array.from([1, 2]) },
        { name: 'b', dtype: 'F32', shape: [2], data: Float32Array.from([1]) },
      ]),
      'writer_size_mismatch',
    );
    assert.equal(existsSync(file), false);
  });
});

describe('tensors in pieces (a merge reads and writes large tensors as row ranges)', () => {
  test('readBytesInto with a byte offset reads exactly that range; a range outside the tensor or splitting an element is refused', async () => {
    const file = path.join(scratch.dir, 'ranges.safetensors');
    const tensors = (['F32', 'BF16', 'I8'] as const).map((dtype, i) => ({
      name: `t${i}`,
      ...sampleTensor(dtype, [7, 5], 40 + i),
    }));
    await writeSafetensors(file, tensors);
    const reader = await SafetensorsFile.open(file);
    try {
      for (const t of tensors) {
        const size = DTYPE_BYTES[t.dtype];
        const all = new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength);
        for (const [start, count] of [
          [0, 5],
          [5, 15],
          [30, 5],
          [12, 1],
        ]) {
          const target = new Uint8Array(count * size);
          await reader.readBytesInto(t.name, target, start * size);
          assert.deepEqual(
            target,
            all.subarray(start * size, (start + count) * size),
            `${t.name} ${start}+${count}`,
          );
        }
        const refused = (target: Uint8Array, offset?: number) =>
          assert.rejects(reader.readBytesInto(t.name, target, offset), (e: unknown) => {
            return e instanceof SafetensorsError && e.code === 'target_size_mismatch' && e.tensor === t.name;
          });
        await refused(new Uint8Array(size), 35 * size); // past the end
        await refused(new Uint8Array(2 * size), 34 * size); // runs over the end
        await refused(new Uint8Array(size), -size);
        await refused(new Uint8Array(5 * size)); // no offset: the whole tensor or nothing
        if (size > 1) {
          await refused(new Uint8Array(size), 1); // splits an element
          await refused(new Uint8Array(size + 1), 0);
        }
      }
    } finally {
      await reader.close();
    }
  });

  test('writePart writes a tensor in pieces to the same bytes as write; overruns and interleaving are refused', async () => {
    const tensors = [
      { name: 'a', ...sampleTensor('BF16', [6, 4], 1) },
      { name: 'b', ...sampleTensor('F32', [3], 2) },
    ];
    const specs = tensors.map(({ name, dtype, shape }) => ({ name, dtype, shape }));
    const whole = path.join(scratch.dir, 'whole.safetensors');
    await writeSafetensors(whole, tensors);
    const pieces = path.join(scratch.dir, 'pieces.safetensors');
    const writer = await SafetensorsWriter.create(pieces, specs);
    const a = tensors[0].data as Uint16Array;
    assert.equal(await writer.writePart('a', a.subarray(0, 8)), false);
    await assert.rejects(
      writer.write('a', a),
      (e: unknown) => e instanceof SafetensorsError && e.code === 'writer_order',
    );
    await assert.rejects(
      writer.writePart('a', a.subarray(0, 20)),
      (e: unknown) => e instanceof SafetensorsError && e.code === 'writer_size_mismatch',
    );
    assert.equal(await writer.writePart('a', a.subarray(8, 20)), false);
    assert.equal(await writer.writePart('a', a.subarray(20)), true);
    await writer.write('b', tensors[1].data);
    await writer.close();
    assert.ok(readFileSync(pieces).equals(readFileSync(whole)));

    const partial = await SafetensorsWriter.create(path.join(scratch.dir, 'partial.safetensors'), specs);
    await partial.writePart('a', a.subarray(0, 4));
    await assert.rejects(
      partial.close(),
      (e: unknown) => e instanceof SafetensorsError && e.code === 'writer_incomplete',
    );
    assert.equal(existsSync(path.join(scratch.dir, 'partial.safetensors')), false);
  });
});
