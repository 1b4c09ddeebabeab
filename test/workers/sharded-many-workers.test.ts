// A sharded merge over two `lorafuse worker` processes as on two machines (each its own data directory; one
// Redis, one S3-compatible bucket on loopback): the shard jobs spread over both workers, a worker SIGKILLed
// while merging a shard has that shard finished by the other, and either way the one published artifact has
// the files, byte for byte, of the same recipe merged in one process.
import assert from 'node:assert/strict';
import path from 'node:path';
import { describe, it } from 'node:test';
import { Job } from 'bullmq';
import { closePlan, executeMerge, parseRecipe, planMerge } from '../../src/merge/index.ts';
import { type MergeJobPayload, type MergeJobResult, shardJobId } from '../../src/queue/index.ts';
import { ArtifactInputs } from '../../src/store/index.ts';
import { bigModels, leftoverWorkDirs, waitFor, waitForState } from './fixtures.ts';
import { startedJob, useWorkerFleet } from './worker-fleet.ts';

/** 24 tensors of 512x1024 F32 (2 MiB each), 6 to a shard: 4 shards that each take a moment. */
const SHAPE = { models: 3, tensors: 24, rows: 512, cols: 1024 };
const SHARD_BYTES = 6 * 512 * 1024 * 4;
const SHARDS = 4;
const WAIT_MS = 300_000;

describe('a sharded merge over two worker processes sharing one Redis and one bucket', () => {
  const fleet = useWorkerFleet('shardmany');
  /** A merge worker that runs one shard at a time, in its own process (no merge worker pool). */
  const spawnWorker = (name: string) =>
    fleet.spawn(name, ['--queues', 'merge', '--concurrency', 'merge=1'], { LORAFUSE_MERGE_WORKERS: '0' });

  async function shardedPayload(): Promise<MergeJobPayload> {
    const payload = await bigModels(fleet.store, fleet.dir, SHAPE);
    return { ...payload, recipe: { ...payload.recipe, max_shard_size: SHARD_BYTES } };
  }

  /** The published files as `name:sha256`, and those of the same recipe merged here in one process. */
  async function publishedAndSingleRun(payload: MergeJobPayload, result: MergeJobResult) {
    const { store } = fleet;
    const record = await store.get(result.artifact.id);
    assert.ok(record);
    const inputs = new ArtifactInputs(store);
    const plan = await planMerge(parseRecipe(payload.recipe), inputs);
    const dir = path.join(fleet.dir, 'single');
    try {
      await executeMerge(plan, { outDir: dir, maxShardBytes: SHARD_BYTES, workers: 0 });
    } finally {
      await closePlan(plan);
      await inputs.closeAll();
    }
    const single = [];
    for (const file of record.files) {
      single.push(`${file.name}:${(await store.scratch.hashFile(path.join(dir, file.name))).sha256}`);
    }
    return { published: record.files.map((f) => `${f.name}:${f.sha256}`), single };
  }

  it('spreads the shard jobs over both workers and publishes the bytes of a single run', async () => {
    const { store, jobs } = fleet;
    const a = spawnWorker('a');
    const b = spawnWorker('b');
    await Promise.all([fleet.ready(a), fleet.ready(b)]);
    const payload = await shardedPayload();
    const queued = await jobs.enqueueMerge(payload);
    const done = await waitForState(jobs, queued.id, ['completed', 'failed'], WAIT_MS);
    assert.equal(done.state, 'completed', JSON.stringify(done.error));
    const result = done.result as MergeJobResult;
    assert.equal(result.sharding?.shards.length, SHARDS);
    const shardIds = Array.from({ length: SHARDS }, (_, i) => shardJobId(queued.id, i));
    for (const id of shardIds) {
      assert.equal([a, b].filter((w) => startedJob(w, id)).length, 1, `${id} started exactly once`);
    }
    assert.ok(
      shardIds.some((id) => startedJob(a, id)),
      'worker a merged a shard',
    );
    assert.ok(
      shardIds.some((id) => startedJob(b, id)),
      'worker b merged a shard',
    );
    assert.equal(
      new Set(result.sharding?.shards.map((s) => s.worker)).size,
      2,
      'the result names both workers',
    );
    const { published, single } = await publishedAndSingleRun(payload, result);
    assert.deepEqual(published, single);
    assert.deepEqual(await store.holds(queued.id), {});
  });

  it("finishes on the other worker the shard of a worker killed mid-merge, with a single run's bytes", async () => {
    const { store, jobs } = fleet;
    const a = spawnWorker('a');
    const b = spawnWorker('b');
    await Promise.all([fleet.ready(a), fleet.ready(b)]);
    const payload = await shardedPayload();
    const modelsBefore = await store.count('model');
    const queued = await jobs.enqueueMerge(payload);
    const queue = jobs.queue('merge');
    // A shard that is merging (some of its tensors written), and the worker that runs it.
    const victimShard = await waitFor(
      'a shard to be merging',
      async () => {
        for (let i = 0; i < SHARDS; i++) {
          const shard = await Job.fromId(queue, shardJobId(queued.id, i));
          const progress = shard?.progress as { tensorsDone?: number } | undefined;
          if (shard && (await shard.getState()) === 'active' && (progress?.tensorsDone ?? 0) > 0)
            return shard.id;
        }
        return null;
      },
      WAIT_MS,
    );
    const victim = startedJob(a, victimShard as string) ? a : b;
    const survivor = victim === a ? b : a;
    assert.ok(startedJob(victim, victimShard as string));
    process.kill(-(victim.child.pid as number), 'SIGKILL');
    assert.equal((await victim.exited).signal, 'SIGKILL');

    const done = await waitForState(jobs, queued.id, ['completed', 'failed'], WAIT_MS);
    assert.equal(done.state, 'completed', JSON.stringify(done.error));
    assert.ok(startedJob(survivor, victimShard as string), 'the surviving worker finished the killed shard');
    assert.equal(await store.count('model'), modelsBefore + 1, 'exactly one result artifact');
    const { published, single } = await publishedAndSingleRun(payload, done.result as MergeJobResult);
    assert.deepEqual(published, single);
    assert.deepEqual(await store.holds(queued.id), {});
    assert.deepEqual(leftoverWorkDirs(survivor.dataDir), []);
  });
});
