// O_DIRECT output (DirectSink, SafetensorsWriter/CheckpointWriter with directMinBytes): the bytes equal
// a page-cache write's at every size around the 4096-byte block and across many stage flips; where
// O_DIRECT is refused the writer falls back and the bytes are still the same; failures leave
// no file. The direct cases are skipped only on a machine whose temp folder refuses O_DIRECT; the
// fallback is exercised by a refusing DirectSink.open.

import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { DirectSink } from '../../src/tensors/direct-sink.ts';
import {
  CheckpointWriter,
  type SafetensorsError,
  SafetensorsWriter,
  type TensorSpec,
} from '../../src/tensors/index.ts';
import { tempDir } from '../helpers/redis.ts';

let scratch: ReturnType<typeof tempDir>;
let directHere = false;
before(async () => {
  scratch = tempDir('tensors-direct');
  const probe = await DirectSink.open(path.join(scratch.dir, 'probe'), 4096);
  directHere = probe !== null;
  await probe?.close();
});
after(() => scratch.remove());

/** Deterministic bytes (an LCG), so two writes can be compared byte for byte. */
function sampleBytes(length: number, seed: number): Uint8Array {
  const bytes = new Uint8Array(length);
  let state = seed >>> 0;
  for (let i = 0; i < length; i++) {
    state = (Math.imul(state, 1103515245) + 12345) >>> 0;
    bytes[i] = state >>> 24;
  }
  return bytes;
}

/** Writes `bytes` through a DirectSink in pieces of the given sizes (cycled); answers false if refused. */
async function writeDirect(file: string, bytes: Uint8Array, pieces: number[], stage: number) {
  const sink = await DirectSink.open(file, bytes.length, stage);
  if (!sink) return false;
  try {
    let done = 0;
    for (let i = 0; done < bytes.length; i++) {
      const length = Math.min(pieces[i % pieces.length], bytes.length - done);
      await sink.write(bytes.subarray(done, done + length));
      done += length;
    }
    await sink.finish();
    await sink.handle.sync();
  } finally {
    await sink.close();
  }
  return true;
}

const specs = (count: number, elements: number): TensorSpec[] =>
  Array.from({ length: count }, (_, i) => ({ name: `layer.${i}.weight`, dtype: 'BF16', shape: [elements] }));

async function writeFile(file: string, tensorSpecs: TensorSpec[], directMinBytes: number | undefined) {
  const writer = await SafetensorsWriter.create(file, tensorSpecs, { format: 'pt' }, { directMinBytes });
  for (const [i, spec] of tensorSpecs.entries()) {
    const bytes = sampleBytes(spec.shape[0] * 2, i + 1);
    await writer.write(spec.name, new Uint16Array(bytes.buffer));
  }
  await writer.close();
  return writer.direct;
}

describe('DirectSink', () => {
  test('file bytes equal the input at every length around a block, in odd pieces and many stage flips', async (t) => {
    if (!directHere) return t.skip('the temp folder refuses O_DIRECT');
    const stage = 8192;
    for (const length of [0, 1, 4095, 4096, 4097, 8191, 8192, 8193, 3 * 8192 + 5, 100_003]) {
      for (const pieces of [[1_000_000], [1, 4095, 7, 9000], [333]]) {
        const bytes = sampleBytes(length, length + pieces.length);
        const file = path.join(scratch.dir, `sink-${length}-${pieces.length}.bin`);
        assert.equal(await writeDirect(file, bytes, pieces, stage), true);
        const back = readFileSync(file);
        assert.equal(back.length, length, `length ${length} in pieces ${pieces}`);
        assert.ok(back.equals(bytes), `bytes of a ${length}-byte file in pieces ${pieces}`);
        rmSync(file);
      }
    }
  });
});

describe('SafetensorsWriter with directMinBytes', () => {
  test('the file is byte-identical to a page-cache write, header and tail included', async (t) => {
    if (!directHere) return t.skip('the temp folder refuses O_DIRECT');
    const tensorSpecs = specs(7, 3001); // 6002-byte tensors: no boundary falls on a block
    const plain = path.join(scratch.dir, 'plain.safetensors');
    const direct = path.join(scratch.dir, 'direct.safetensors');
    assert.equal(await writeFile(plain, tensorSpecs, undefined), false);
    assert.equal(await writeFile(direct, tensorSpecs, 0), true);
    assert.ok(readFileSync(direct).equals(readFileSync(plain)));
  });

  test('a file below directMinBytes goes through the page cache', async () => {
    const file = path.join(scratch.dir, 'small.safetensors');
    assert.equal(await writeFile(file, specs(2, 10), 1 << 20), false);
  });

  test('where O_DIRECT is refused it writes through the page cache, same bytes', async (t) => {
    const tensorSpecs = specs(3, 5000);
    const plain = path.join(scratch.dir, 'refused-plain.safetensors');
    const refused = path.join(scratch.dir, 'refused.safetensors');
    await writeFile(plain, tensorSpecs, undefined);
    const open = t.mock.method(DirectSink, 'open', async () => null);
    assert.equal(await writeFile(refused, tensorSpecs, 0), false);
    assert.equal(open.mock.callCount(), 1);
    assert.ok(readFileSync(refused).equals(readFileSync(plain)));
  });

  test('on tmpfs (O_DIRECT refused before Linux 6.6, accepted since) the bytes are the same', async (t) => {
    if (!existsSync('/dev/shm')) return t.skip('no /dev/shm here');
    const dir = mkdtempSync('/dev/shm/lorafuse-direct-');
    try {
      const tensorSpecs = specs(3, 5000);
      const plain = path.join(scratch.dir, 'shm-plain.safetensors');
      const onShm = path.join(dir, 'model.safetensors');
      await writeFile(plain, tensorSpecs, undefined);
      await writeFile(onShm, tensorSpecs, 0);
      assert.ok(readFileSync(onShm).equals(readFileSync(plain)));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('an incomplete file is removed at close, an aborted one at abort', async (t) => {
    if (!directHere) return t.skip('the temp folder refuses O_DIRECT');
    const tensorSpecs = specs(3, 5000);
    const incomplete = path.join(scratch.dir, 'incomplete.safetensors');
    const writer = await SafetensorsWriter.create(incomplete, tensorSpecs, undefined, { directMinBytes: 0 });
    assert.equal(writer.direct, true);
    await writer.write(tensorSpecs[0].name, new Uint16Array(5000));
    await assert.rejects(
      writer.close(),
      (e: unknown) => (e as SafetensorsError).code === 'writer_incomplete',
    );
    assert.equal(existsSync(incomplete), false);

    const aborted = path.join(scratch.dir, 'aborted.safetensors');
    const other = await SafetensorsWriter.create(aborted, tensorSpecs, undefined, { directMinBytes: 0 });
    await other.write(tensorSpecs[0].name, new Uint16Array(5000));
    await other.abort();
    assert.equal(existsSync(aborted), false);
  });
});

describe('CheckpointWriter with directMinBytes', () => {
  test('sharded output: every shard and the index equal the page-cache checkpoint', async (t) => {
    if (!directHere) return t.skip('the temp folder refuses O_DIRECT');
    const tensorSpecs = specs(9, 2500);
    const write = async (dir: string, directMinBytes: number | undefined) => {
      const writer = await CheckpointWriter.create(dir, tensorSpecs, {
        maxShardBytes: 12_000,
        directMinBytes,
      });
      for (const [i, spec] of tensorSpecs.entries()) {
        // the middle tensor arrives in two pieces, as a merge writes large tensors
        const data = new Uint16Array(sampleBytes(5000, i + 11).buffer);
        if (i === 4) {
          assert.equal(await writer.writePart(spec.name, data.subarray(0, 1000)), false);
          assert.equal(await writer.writePart(spec.name, data.subarray(1000)), true);
        } else await writer.write(spec.name, data);
      }
      return writer.close();
    };
    const plainDir = path.join(scratch.dir, 'ckpt-plain');
    const directDir = path.join(scratch.dir, 'ckpt-direct');
    const files = await write(plainDir, undefined);
    assert.deepEqual(await write(directDir, 0), files);
    assert.ok(files.length > 2, 'several shards and an index');
    for (const file of files) {
      const a = readFileSync(path.join(plainDir, file));
      assert.ok(readFileSync(path.join(directDir, file)).equals(a), file);
      assert.equal(statSync(path.join(directDir, file)).size, a.length);
    }
  });
});
