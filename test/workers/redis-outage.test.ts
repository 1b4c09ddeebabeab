// Redis stopped for longer than the job lock while a merge runs, then restarted with its AOF on the
// same port and data directory: the job completes exactly once and exactly one artifact exists for it.
// Real processes throughout: redis-server (AOF on), `lorafuse worker` and its sandboxed merge process.
// The sandboxed merge is frozen (SIGSTOP) across the outage, so that the merge provably still runs
// when Redis goes and finishes only after its lock has expired, however fast or loaded the machine is:
// the attempt that lost its lock must not publish, and the attempt that owns the job publishes once.
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { type EmbeddedRedis, startEmbeddedRedis } from '../../src/cli/embedded-redis.ts';
import { jobKeys, type MergeJobResult, QUEUE_NAMES } from '../../src/queue/index.ts';
import type { ArtifactRecord } from '../../src/store/index.ts';
import { diskState } from '../store/fixtures.ts';
import { HANG_GUARD_MS } from '../helpers/wait.ts';
import { spawnWorkerProcess, type WorkerProcess } from '../helpers/worker-process.ts';
import {
  bigModels,
  type JobWorld,
  leftoverWorkDirs,
  openJobWorld,
  waitFor,
  waitForState,
} from './fixtures.ts';

const LOCK_MS = 1000;

describe('a Redis outage longer than the job lock during a merge', () => {
  const redisDir = mkdtempSync(path.join(os.tmpdir(), 'lorafuse-outage-redis-'));
  let redis: EmbeddedRedis;
  let world: JobWorld;
  let worker: WorkerProcess;

  before(async () => {
    redis = await startEmbeddedRedis({ dir: redisDir, appendOnly: true });
    world = await openJobWorld(redis.url, 'outage');
  });
  after(async () => {
    await worker?.kill();
    await world.close();
    await redis.stop();
    rmSync(redisDir, { recursive: true, force: true });
  });

  it('completes the job exactly once, with exactly one artifact and nothing half-written', async () => {
    const { store, jobs, data, prefix } = world;
    const payload = await bigModels(store, data.dir, { models: 3, tensors: 8, rows: 256, cols: 512 });
    const modelsBefore = await store.count('model');
    worker = spawnWorkerProcess({
      REDIS_URL: redis.url,
      LORAFUSE_QUEUE_PREFIX: prefix,
      LORAFUSE_DATA_DIR: data.dir,
      LORAFUSE_MERGE_WORKERS: '0',
      LOG_LEVEL: 'warn',
      LORAFUSE_WORKER_LOCK_MS: String(LOCK_MS),
      LORAFUSE_WORKER_STALLED_MS: '500',
    });
    const queued = await jobs.enqueueMerge(payload);
    const failure = async (what: string) =>
      `${what}; job ${JSON.stringify(await jobs.get(queued.id))}; worker output:\n${worker.output()}`;
    await waitForState(jobs, queued.id, ['active'], HANG_GUARD_MS);
    const sandboxes = await waitFor(
      'the sandboxed merge process',
      async () => {
        const pids = worker.sandboxes();
        return pids.length > 0 ? pids : null;
      },
      HANG_GUARD_MS,
    );
    for (const pid of sandboxes) process.kill(pid, 'SIGSTOP');
    const publication = jobKeys(prefix).published(queued.id, 'result');
    assert.equal((await jobs.get(queued.id))?.state, 'active', await failure('the merge finished too soon'));
    assert.equal(await store.count('model'), modelsBefore, await failure('the merge was stored too soon'));

    // The outage: longer than the lock, so the attempt in flight loses it; AOF keeps the queue.
    const port = redis.port;
    await redis.stop();
    await new Promise((resolve) => setTimeout(resolve, 3 * LOCK_MS));
    redis = await startEmbeddedRedis({ dir: redisDir, port, appendOnly: true });
    await waitFor(
      'the test connection to come back',
      () => world.redis.ping().catch(() => null),
      HANG_GUARD_MS,
    );
    assert.equal(
      await world.redis.exists(jobKeys(prefix).lock(QUEUE_NAMES.merge, queued.id)),
      0,
      'the lock expired',
    );
    for (const pid of sandboxes) process.kill(pid, 'SIGCONT');

    const done = await waitForState(jobs, queued.id, ['completed', 'failed'], HANG_GUARD_MS).catch(
      async (error) => {
        throw new Error(await failure(error.message));
      },
    );
    assert.equal(done.state, 'completed', await failure('the job did not complete'));
    assert.ok(done.attempts >= 2, `the job ran again after losing its lock (${done.attempts} attempts)`);
    const result = done.result as MergeJobResult;

    // Exactly one artifact for the job, the one its result names, published under the job's key.
    const models: ArtifactRecord[] = (await store.list('model', { limit: 100 })).items;
    assert.equal(models.length, modelsBefore + 1, await failure('one result artifact, not two'));
    const fromJob = models.filter((record) => record.lineage?.jobId === queued.id);
    assert.deepEqual(
      fromJob.map((record) => record.id),
      [result.artifact.id],
    );
    assert.equal(await world.redis.get(publication), result.artifact.id);

    // Completed exactly once: one `completed` event for the job in the queue's event stream.
    const events = await world.redis.xrange(`${prefix}:${QUEUE_NAMES.merge}:events`, '-', '+');
    const completions = events.filter(([, fields]) => {
      const entry = Object.fromEntries(
        fields.flatMap((value, i) => (i % 2 === 0 ? [[value, fields[i + 1]]] : [])),
      );
      return entry.event === 'completed' && entry.jobId === queued.id;
    });
    assert.equal(completions.length, 1, 'one completion');

    // Nothing half-written: no work folder, no staging file, and every blob belongs to a record.
    assert.deepEqual(leftoverWorkDirs(data.dir), []);
    assert.equal(existsSync(path.join(data.dir, 'tmp', `job-${queued.id}-scratch`)), false);
    const disk = await diskState(data.dir);
    assert.deepEqual(disk.tmp, []);
    const referenced = new Set(models.flatMap((record) => record.files.map((file) => file.sha256)));
    assert.deepEqual([...new Set(disk.blobs)].sort(), [...referenced].sort(), 'no orphan blob');
  });
});
