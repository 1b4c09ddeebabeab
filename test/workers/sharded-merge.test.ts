// A merge larger than one shard, run as shard jobs (a BullMQ flow the merge job builds at run time) by a real
// sandboxed worker on a real Redis: the published artifact has the very files a single run writes (each shard
// and the index byte for byte, and every tensor equal to an unsharded run); a failed shard fails the merge with
// the shard named and nothing published or left in the blob store; a cancel of the merge stops its shards.
import assert from 'node:assert/strict';
import path from 'node:path';
import { after, afterEach, before, beforeEach, describe, it } from 'node:test';
import { Job } from 'bullmq';
import { closePlan, executeMerge, parseRecipe, planMerge } from '../../src/merge/index.ts';
import {
  CANCELLED_REASON,
  type JobService,
  type MergeJobPayload,
  type MergeJobResult,
  shardJobId,
} from '../../src/queue/index.ts';
import { ArtifactInputs, type ArtifactStore } from '../../src/store/index.ts';
import { Checkpoint } from '../../src/tensors/index.ts';
import { type MergeWorkerHandle, startMergeWorker } from '../../workers/merge-worker.ts';
import { startTestRedis, type TestRedis } from '../helpers/redis.ts';
import { bigModels, type JobWorld, leftoverWorkDirs, openJobWorld, waitForState } from './fixtures.ts';

const SETTINGS = { lockDurationMs: 30_000, stalledIntervalMs: 30_000, shutdownGraceMs: 10_000 };
/** 10 tensors of 64x64 F32 (16 KiB each) in shards of at most 40 000 bytes: 2 tensors a shard, 5 shards. */
const SHAPE = { models: 3, tensors: 10, rows: 64, cols: 64 };
const SHARD_BYTES = 40_000;
const WAIT_MS = 240_000;

/** A seeded random method (dare_ties), so equal bytes also show that every shard drew the same numbers. */
async function shardedPayload(store: ArtifactStore, dir: string): Promise<MergeJobPayload> {
  const payload = await bigModels(store, dir, SHAPE);
  return {
    ...payload,
    recipe: {
      ...payload.recipe,
      merge_method: 'dare_ties',
      seed: payload.seed,
      max_shard_size: SHARD_BYTES,
    },
  };
}

describe('sharded merge (one job per output shard, one artifact)', () => {
  let server: TestRedis;
  let world: JobWorld;
  let store: ArtifactStore;
  let jobs: JobService;
  let worker: MergeWorkerHandle | undefined;

  before(async () => {
    server = await startTestRedis();
  });
  after(async () => {
    await server.stop();
  });
  beforeEach(async () => {
    world = await openJobWorld(server.url, 'sharded');
    ({ store, jobs } = world);
    worker = undefined;
  });
  afterEach(async () => {
    await worker?.close(10_000);
    await world.close();
  });

  function start(): MergeWorkerHandle {
    worker = startMergeWorker({
      redisUrl: server.url,
      prefix: world.prefix,
      dataDir: world.data.dir,
      concurrency: 1,
      settings: SETTINGS,
    });
    return worker;
  }

  /** The same recipe merged in this process by the engine alone, into `dir`. */
  async function mergeHere(payload: MergeJobPayload, dir: string, maxShardBytes: number): Promise<void> {
    const inputs = new ArtifactInputs(store);
    const plan = await planMerge(parseRecipe(payload.recipe), inputs);
    try {
      await executeMerge(plan, { outDir: dir, maxShardBytes, workers: 0 });
    } finally {
      await closePlan(plan);
      await inputs.closeAll();
    }
  }

  it('publishes the files of a single run: every shard and the index byte for byte', async () => {
    const payload = await shardedPayload(store, world.data.dir);
    start();
    const queued = await jobs.enqueueMerge(payload);
    const done = await waitForState(jobs, queued.id, ['completed', 'failed'], WAIT_MS);
    assert.equal(done.state, 'completed', JSON.stringify(done.error));
    const result = done.result as MergeJobResult;
    assert.equal(result.sharding?.maxShardBytes, SHARD_BYTES);
    assert.deepEqual(
      result.sharding?.shards.map((s) => [s.index, s.file, s.tensors]),
      [0, 1, 2, 3, 4].map((i) => [i, `model-0000${i + 1}-of-00005.safetensors`, 2]),
    );
    assert.deepEqual(done.progress, { phase: 'done', tensorsDone: 10, tensorsTotal: 10 });
    const record = await store.get(result.artifact.id);
    assert.ok(record);
    assert.equal(record.lineage?.jobId, queued.id);
    assert.equal(record.tensorCount, 10);

    // The single run with the same shard size: the same file names and the same sha256 for each.
    const single = path.join(world.data.dir, 'single');
    await mergeHere(payload, single, SHARD_BYTES);
    const singleFiles = [];
    for (const name of [...record.files.map((f) => f.name)].sort()) {
      const hashed = await store.scratch.hashFile(path.join(single, name));
      singleFiles.push({ name, size: hashed.size, sha256: hashed.sha256 });
    }
    assert.deepEqual(record.files, singleFiles);
    assert.ok(record.files.some((f) => f.name === 'model.safetensors.index.json'));

    // And an unsharded run: every tensor's bytes equal.
    const whole = path.join(world.data.dir, 'whole');
    await mergeHere(payload, whole, Number.MAX_SAFE_INTEGER);
    const sharded = await Checkpoint.openFiles(store.filePaths(record));
    const unsharded = await Checkpoint.openFolder(whole);
    try {
      assert.deepEqual(sharded.names().sort(), unsharded.names().sort());
      for (const name of unsharded.names()) {
        const a = await sharded.read(name);
        const b = await unsharded.read(name);
        assert.equal(a.dtype, b.dtype);
        assert.ok(
          Buffer.from(a.data.buffer, a.data.byteOffset, a.data.byteLength).equals(
            Buffer.from(b.data.buffer, b.data.byteOffset, b.data.byteLength),
          ),
          `${name} differs from the unsharded run`,
        );
      }
    } finally {
      await sharded.close();
      await unsharded.close();
    }

    // The shard blobs belong to the artifact alone now: no hold left, one reference each.
    assert.deepEqual(await store.holds(queued.id), {});
    for (const file of record.files) assert.equal(await store.referenceCount(file.sha256), 1, file.name);
    assert.deepEqual(leftoverWorkDirs(world.data.dir), []);
  });

  it('fails the merge when a shard fails, naming the shard, and leaves no artifact or blob behind', async () => {
    const payload = await shardedPayload(store, world.data.dir);
    const blobsBefore = await store.blobs.list();
    const handle = start();
    let parentId = '';
    // While the first shard runs (one at a time here), the last one is still queued: break its task.
    handle.worker.on('active', (job) => {
      if (job.data?.shard?.index !== 0) return;
      void Job.fromId(jobs.queue('merge'), shardJobId(parentId, 4)).then((last) =>
        last?.updateData({ ...last.data, shard: { ...last.data.shard, tensors: ['no.such.tensor'] } }),
      );
    });
    const queued = await jobs.enqueueMerge(payload);
    parentId = queued.id;
    const done = await waitForState(jobs, queued.id, ['completed', 'failed'], WAIT_MS);
    assert.equal(done.state, 'failed');
    assert.equal(done.error?.type, 'invalid_input');
    assert.match(
      done.error?.message ?? '',
      /^shard 5 of 5 \(model-00005-of-00005\.safetensors\) failed: .*no\.such\.tensor/,
    );
    assert.equal(await store.count('model'), SHAPE.models, 'no merged artifact');
    // Shards 1-4 were merged and kept for the merge; failing, it released them.
    assert.deepEqual(await store.holds(queued.id), {});
    assert.deepEqual(await store.blobs.list(), blobsBefore);
    assert.deepEqual(leftoverWorkDirs(world.data.dir), []);
  });

  it('cancelling the merge cancels its shards, publishes nothing and keeps no shard blob', async () => {
    const payload = await shardedPayload(store, world.data.dir);
    const blobsBefore = await store.blobs.list();
    const handle = start();
    let parentId = '';
    let cancelView: Promise<unknown> | undefined;
    handle.worker.on('active', (job) => {
      if (job.data?.shard?.index === 0) cancelView ??= jobs.cancel(parentId);
    });
    const queued = await jobs.enqueueMerge(payload);
    parentId = queued.id;
    const done = await waitForState(jobs, queued.id, ['completed', 'failed', 'cancelled'], WAIT_MS);
    const asked = (await cancelView) as { state: string; cancelRequested?: boolean };
    // The merge had started (it queued its shards), so the cancel is a request it honours between tensors.
    assert.equal(asked.state, 'active');
    assert.equal(asked.cancelRequested, true);
    assert.equal(done.state, 'cancelled', JSON.stringify(done.error));
    for (let i = 0; i < 5; i++) {
      const shard = await Job.fromId(jobs.queue('merge'), shardJobId(queued.id, i));
      assert.equal(await shard?.getState(), 'failed', `shard ${i}`);
      assert.equal(shard?.failedReason, CANCELLED_REASON);
    }
    assert.equal(await store.count('model'), SHAPE.models);
    assert.deepEqual(await store.holds(queued.id), {});
    assert.deepEqual(await store.blobs.list(), blobsBefore);
    assert.deepEqual(leftoverWorkDirs(world.data.dir), []);
  });
});
