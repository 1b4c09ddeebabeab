// Sharded checkpoints: size-based sharding on write with Hugging Face names and index, reading back
// through the index, and the index checks (missing shard, misplaced or duplicated tensors).

import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import {
  assignShards,
  Checkpoint,
  CheckpointWriter,
  SafetensorsError,
  type TensorSpec,
  writeSafetensors,
} from '../../src/tensors/index.ts';
import { tempDir } from '../helpers/redis.ts';

let scratch: ReturnType<typeof tempDir>;
before(() => {
  scratch = tempDir('tensors-checkpoint');
});
after(() => scratch.remove());

let counter = 0;
function freshDir(): string {
  counter++;
  const dir = path.join(scratch.dir, `ckpt-${counter}`);
  mkdirSync(dir);
  return dir;
}

// 5 tensors of 40, 40, 24, 40, 8 bytes
const specs: TensorSpec[] = [
  { name: 'model.embed.weight', dtype: 'F32', shape: [10] },
  { name: 'model.layers.0.weight', dtype: 'F32', shape: [2, 5] },
  { name: 'model.layers.0.bias', dtype: 'BF16', shape: [12] },
  { name: 'model.layers.1.weight', dtype: 'F32', shape: [10] },
  { name: 'model.norm.weight', dtype: 'F16', shape: [4] },
];
function dataFor(spec: TensorSpec, seed: number): Float32Array | Uint16Array {
  const n = spec.shape.reduce((a, b) => a * b, 1);
  return spec.dtype === 'F32'
    ? Float32Array.from({ length: n }, (_, i) => seed * 100 + i)
    : Uint16Array.from({ length: n }, (_, i) => seed * 100 + i);
}

async function writeCheckpoint(dir: string, maxShardBytes?: number): Promise<string[]> {
  const writer = await CheckpointWriter.create(dir, specs, { maxShardBytes, metadata: { format: 'pt' } });
  for (const [i, spec] of specs.entries()) await writer.write(spec.name, dataFor(spec, i));
  return writer.close();
}

async function expectCode(promise: Promise<unknown>, code: string, tensor?: string): Promise<void> {
  await assert.rejects(promise, (e: unknown) => {
    assert.ok(e instanceof SafetensorsError, String(e));
    assert.equal(e.code, code, e.message);
    if (tensor !== undefined) assert.equal(e.tensor, tensor);
    return true;
  });
}

describe('CheckpointWriter', () => {
  test('assigns shards greedily in spec order; a tensor over the cap gets a shard of its own', () => {
    const shards = assignShards(specs, 64, 'model');
    assert.deepEqual(
      shards.map((s) => [s.file, s.specs.map((t) => t.name)]),
      [
        ['model-00001-of-00003.safetensors', ['model.embed.weight']],
        ['model-00002-of-00003.safetensors', ['model.layers.0.weight', 'model.layers.0.bias']],
        ['model-00003-of-00003.safetensors', ['model.layers.1.weight', 'model.norm.weight']],
      ],
    );
    assert.deepEqual(
      assignShards(specs, 10, 'x').map((s) => s.specs.length),
      [1, 1, 1, 1, 1],
    );
    assert.deepEqual(
      assignShards(specs, 1e9, 'adapter_model').map((s) => s.file),
      ['adapter_model.safetensors'],
    );
  });

  test('sharded write + read round trip with HF names and index', async () => {
    const dir = freshDir();
    const files = await writeCheckpoint(dir, 64);
    assert.deepEqual(files, [
      'model-00001-of-00003.safetensors',
      'model-00002-of-00003.safetensors',
      'model-00003-of-00003.safetensors',
      'model.safetensors.index.json',
    ]);
    assert.deepEqual(readdirSync(dir).sort(), [...files].sort());
    const index = JSON.parse(readFileSync(path.join(dir, 'model.safetensors.index.json'), 'utf8'));
    assert.deepEqual(index.metadata, { total_size: 40 + 40 + 24 + 40 + 8 });
    assert.deepEqual(Object.keys(index.weight_map), [...specs.map((s) => s.name)].sort());
    assert.equal(index.weight_map['model.layers.1.weight'], 'model-00003-of-00003.safetensors');

    const checkpoint = await Checkpoint.openFolder(dir);
    try {
      assert.deepEqual(
        checkpoint.names(),
        specs.map((s) => s.name),
      );
      assert.deepEqual(checkpoint.metadata, { format: 'pt' });
      for (const [i, spec] of specs.entries()) {
        const tensor = await checkpoint.read(spec.name);
        assert.equal(tensor.dtype, spec.dtype);
        assert.deepEqual(tensor.shape, spec.shape);
        assert.deepEqual([...tensor.data], [...dataFor(spec, i)]);
        assert.equal(checkpoint.info(spec.name).numel, tensor.data.length);
      }
      assert.deepEqual(
        [...(await checkpoint.readFloat32('model.layers.0.weight'))],
        [...dataFor(specs[1], 1)],
      );
      const reused = new Float32Array(10);
      assert.equal(await checkpoint.readFloat32Into('model.layers.1.weight', reused), reused);
      assert.deepEqual([...reused], [...dataFor(specs[3], 3)]);
      assert.equal(checkpoint.has('nope'), false);
      await expectCode(checkpoint.read('nope'), 'tensor_not_found', 'nope');
    } finally {
      await checkpoint.close();
    }
  });

  test('everything in one shard: a single model.safetensors and no index', async () => {
    const dir = freshDir();
    assert.deepEqual(await writeCheckpoint(dir), ['model.safetensors']);
    assert.deepEqual(readdirSync(dir), ['model.safetensors']);
    const checkpoint = await Checkpoint.openFolder(dir);
    assert.deepEqual(
      checkpoint.names(),
      specs.map((s) => s.name),
    );
    await checkpoint.close();
  });

  test('abort() mid-way removes every shard it wrote', async () => {
    const dir = freshDir();
    writeFileSync(path.join(dir, 'config.json'), '{}');
    const writer = await CheckpointWriter.create(dir, specs, { maxShardBytes: 64 });
    for (const [i, spec] of specs.slice(0, 4).entries()) await writer.write(spec.name, dataFor(spec, i));
    assert.equal(readdirSync(dir).length, 4);
    await writer.abort();
    assert.deepEqual(readdirSync(dir), ['config.json'], 'only the file it did not write remains');
  });

  test('close() before every tensor is written fails and removes everything', async () => {
    const dir = freshDir();
    const writer = await CheckpointWriter.create(dir, specs, { maxShardBytes: 64 });
    await writer.write(specs[0].name, dataFor(specs[0], 0));
    await expectCode(writer.close(), 'writer_incomplete', specs[1].name);
    assert.deepEqual(readdirSync(dir), []);
  });

  test('a PEFT stem names the files adapter_model*', async () => {
    const dir = freshDir();
    const writer = await CheckpointWriter.create(dir, specs.slice(0, 2), {
      stem: 'adapter_model',
      maxShardBytes: 40,
    });
    await writer.write(specs[0].name, dataFor(specs[0], 0));
    await writer.write(specs[1].name, dataFor(specs[1], 1));
    assert.deepEqual(await writer.close(), [
      'adapter_model-00001-of-00002.safetensors',
      'adapter_model-00002-of-00002.safetensors',
      'adapter_model.safetensors.index.json',
    ]);
    const checkpoint = await Checkpoint.openFolder(dir, 'adapter_model');
    assert.equal(checkpoint.names().length, 2);
    await checkpoint.close();
    await expectCode(Checkpoint.openFolder(dir), 'checkpoint_not_found');
  });
});

describe('Checkpoint index checks', () => {
  function editIndex(dir: string, edit: (weightMap: Record<string, string>) => void): void {
    const file = path.join(dir, 'model.safetensors.index.json');
    const index = JSON.parse(readFileSync(file, 'utf8'));
    edit(index.weight_map);
    writeFileSync(file, JSON.stringify(index));
  }

  test('a weight_map file that does not exist', async () => {
    const dir = freshDir();
    await writeCheckpoint(dir, 64);
    editIndex(dir, (map) => {
      map['model.norm.weight'] = 'model-00009-of-00009.safetensors';
    });
    await expectCode(Checkpoint.openFolder(dir), 'index_missing_shard');
  });

  test('a tensor that is not in the file the index says', async () => {
    const dir = freshDir();
    await writeCheckpoint(dir, 64);
    editIndex(dir, (map) => {
      map['model.layers.1.weight'] = 'model-00001-of-00003.safetensors';
    });
    await expectCode(Checkpoint.openFolder(dir), 'index_mismatch', 'model.layers.1.weight');
  });

  test('a tensor the index lists but no shard holds', async () => {
    const dir = freshDir();
    await writeCheckpoint(dir, 64);
    editIndex(dir, (map) => {
      map['model.ghost'] = 'model-00001-of-00003.safetensors';
    });
    await expectCode(Checkpoint.openFolder(dir), 'index_mismatch', 'model.ghost');
  });

  test('the same tensor stored in two shards', async () => {
    const dir = freshDir();
    await writeCheckpoint(dir, 64);
    await writeSafetensors(path.join(dir, 'model-00003-of-00003.safetensors'), [
      { name: 'model.layers.1.weight', dtype: 'F32', shape: [10], data: new Float32Array(10) },
      { name: 'model.norm.weight', dtype: 'F16', shape: [4], data: new Uint16Array(4) },
      { name: 'model.embed.weight', dtype: 'F32', shape: [10], data: new Float32Array(10) },
    ]);
    await expectCode(Checkpoint.openFolder(dir), 'checkpoint_duplicate_tensor', 'model.embed.weight');
  });

  test('a weight_map entry that is a path, not a file name, and an index with duplicate keys', async () => {
    const dir = freshDir();
    await writeCheckpoint(dir, 64);
    editIndex(dir, (map) => {
      map['model.norm.weight'] = '../model-00003-of-00003.safetensors';
    });
    await expectCode(Checkpoint.openFolder(dir), 'index_invalid', 'model.norm.weight');
    writeFileSync(path.join(dir, 'model.safetensors.index.json'), '{"weight_map":{"a":"x","a":"y"}}');
    await expectCode(Checkpoint.openFolder(dir), 'index_invalid');
  });

  test('openFiles maps names to arbitrary paths (a content-addressed store)', async () => {
    const dir = freshDir();
    const names = await writeCheckpoint(dir, 64);
    const blobs = freshDir();
    const files: Record<string, string> = {};
    for (const [i, name] of names.entries()) {
      const blob = path.join(blobs, `blob-${i}`);
      writeFileSync(blob, readFileSync(path.join(dir, name)));
      files[name] = blob;
    }
    const checkpoint = await Checkpoint.openFiles(files);
    assert.deepEqual([...(await checkpoint.read('model.layers.0.bias')).data], [...dataFor(specs[2], 2)]);
    await checkpoint.close();
    assert.ok(existsSync(files['model.safetensors.index.json']));
  });
});
