// Job retention: finished jobs are kept for the configured age and count, then removed by BullMQ's
// removeOnComplete/removeOnFail; our own index entries follow, and the artifacts the jobs made stay.
import assert from 'node:assert/strict';
import path from 'node:path';
import { after, afterEach, before, beforeEach, describe, it } from 'node:test';
import { UnrecoverableError, Worker } from 'bullmq';
import type { Redis } from 'ioredis';
import { loadConfig } from '../../src/config.ts';
import {
  createApiRedis,
  createWorkerRedis,
  type JobRetention,
  JobService,
  jobKeys,
  type MergeJobPayload,
  QUEUE_NAMES,
} from '../../src/queue/index.ts';
import { ArtifactStore } from '../../src/store/index.ts';
import { startTestRedis, type TestRedis, tempDir, uniquePrefix } from '../helpers/redis.ts';
import { writeModelFolder } from '../store/fixtures.ts';

const payload = (tag: string): MergeJobPayload => ({
  recipe: { merge_method: 'linear', models: [{ model: tag, parameters: { weight: 1 } }] },
  inputs: [],
  seed: 1,
});

describe('job retention', () => {
  let server: TestRedis;
  let redis: Redis;
  let prefix: string;
  let work: ReturnType<typeof tempDir>;
  let cleanups: Array<() => Promise<void>>;
  before(async () => {
    server = await startTestRedis();
  });
  after(async () => {
    await server.stop();
  });
  beforeEach(() => {
    prefix = uniquePrefix('retention');
    redis = createApiRedis(server.url);
    work = tempDir('lorafuse-retention');
    cleanups = [];
  });
  afterEach(async () => {
    for (const cleanup of cleanups.reverse()) await cleanup();
    redis.disconnect();
    work.remove();
  });

  /** A JobService and a worker that stores a real artifact per job (or fails the jobs tagged "fail"). */
  async function setup(retention: JobRetention) {
    const jobs = new JobService({ redis, prefix, retention, pruneGraceMs: 0 });
    const store = new ArtifactStore({ redis, dataDir: path.join(work.dir, 'data'), prefix });
    await store.init();
    const connection = createWorkerRedis(server.url);
    let made = 0;
    const worker = new Worker(
      QUEUE_NAMES.merge,
      async (job) => {
        const tag = (job.data as MergeJobPayload).recipe.models as Array<{ model: string }>;
        if (tag[0].model.startsWith('fail')) throw new UnrecoverableError(`failed ${tag[0].model}`);
        const dir = await writeModelFolder(path.join(work.dir, `out-${made++}`), { offset: made });
        const record = await store.ingestDirectory('model', dir, {
          parents: [],
          jobId: job.id,
          lorafuseVersion: 'test',
        });
        return { artifact: { kind: 'model', id: record.id } };
      },
      { connection, prefix },
    );
    cleanups.push(async () => {
      await worker.close(true);
      connection.disconnect();
      await jobs.close();
    });
    return { jobs, store };
  }

  async function finish(jobs: JobService, tag: string) {
    const view = await jobs.enqueueMerge(payload(tag));
    for (let i = 0; i < 800; i++) {
      const current = await jobs.get(view.id);
      if (current?.state === 'completed' || current?.state === 'failed') return current;
      await new Promise((resolve) => setTimeout(resolve, 25));
    }
    throw new Error(`job ${tag} did not finish`);
  }

  it('keeps the newest `count` completed and failed jobs; the removed ones leave the listing, their artifacts stay', async () => {
    const { jobs, store } = await setup({
      completed: { age: 3600, count: 2 },
      failed: { age: 3600, count: 1 },
    });
    const completed = [];
    for (const tag of ['a', 'b', 'c', 'd']) completed.push(await finish(jobs, tag));
    const failed = [];
    for (const tag of ['fail-1', 'fail-2']) failed.push(await finish(jobs, tag));
    assert.deepEqual(
      failed.map((job) => job.state),
      ['failed', 'failed'],
    );

    const queue = jobs.queue('merge');
    assert.equal(await queue.getCompletedCount(), 2);
    assert.equal(await queue.getFailedCount(), 1);
    assert.equal(await jobs.get(completed[0].id), null, 'the oldest completed job is gone');
    assert.equal(await jobs.get(completed[1].id), null);
    assert.equal((await jobs.get(completed[3].id))?.state, 'completed');
    assert.equal(await jobs.get(failed[0].id), null, 'the older failed job is gone');
    assert.equal((await jobs.get(failed[1].id))?.error?.message, 'failed fail-2');

    // Every artifact the removed jobs made is still stored and readable.
    for (const job of completed) {
      const id = (job.result as { artifact: { id: string } }).artifact.id;
      const record = await store.get(id);
      assert.ok(record, `artifact ${id} of ${job.id} stays`);
    }

    // The listing drops removed jobs and prunes their index entries (first pass marks, second prunes).
    const kept = [failed[1].id, completed[3].id, completed[2].id];
    assert.deepEqual(
      (await jobs.list({ limit: 10 })).items.map((job) => job.id),
      kept,
    );
    await jobs.list({ limit: 10 });
    const keys = jobKeys(prefix);
    assert.deepEqual(await redis.zrevrange(keys.index('default'), 0, -1), kept);
    assert.equal(await redis.hlen(keys.types), 3);
  });

  it('removes completed jobs older than `age` once a later job finishes', async () => {
    const { jobs } = await setup({ completed: { age: 1, count: 1000 }, failed: { age: 1, count: 1000 } });
    const old = await finish(jobs, 'old');
    await new Promise((resolve) => setTimeout(resolve, 2100));
    const fresh = await finish(jobs, 'fresh');
    assert.equal(await jobs.get(old.id), null);
    assert.equal((await jobs.get(fresh.id))?.state, 'completed');
  });

  it('reads its age and count limits from the configuration', () => {
    const config = loadConfig({
      LORAFUSE_COMPLETED_JOBS_MAX_AGE_S: '60',
      LORAFUSE_COMPLETED_JOBS_MAX_COUNT: '5',
      LORAFUSE_FAILED_JOBS_MAX_AGE_S: '120',
      LORAFUSE_FAILED_JOBS_MAX_COUNT: '7',
    });
    assert.deepEqual(config.jobRetention, {
      completed: { age: 60, count: 5 },
      failed: { age: 120, count: 7 },
    });
    assert.deepEqual(loadConfig({}).jobRetention, {
      completed: { age: 604800, count: 10000 },
      failed: { age: 2592000, count: 10000 },
    });
    assert.throws(
      () => loadConfig({ LORAFUSE_FAILED_JOBS_MAX_COUNT: '0' }),
      /LORAFUSE_FAILED_JOBS_MAX_COUNT/,
    );
  });
});
