// `lorafuse worker` as a real child process: killed mid-job (its whole process group, as a crashed
// machine would be) and restarted, the job is recovered as stalled and completes correctly; on
// SIGTERM the worker finishes its job before exiting.
import assert from 'node:assert/strict';
import { after, afterEach, before, beforeEach, describe, it } from 'node:test';
import type { JobService, MergeJobResult } from '../../src/queue/index.ts';
import type { ArtifactStore } from '../../src/store/index.ts';
import { Checkpoint } from '../../src/tensors/index.ts';
import { startTestRedis, type TestRedis } from '../helpers/redis.ts';
import { spawnWorkerProcess, type WorkerProcess } from '../helpers/worker-process.ts';
import {
  bigModels,
  leftoverWorkDirs,
  waitFor,
  waitForState,
  type JobWorld,
  openJobWorld,
} from './fixtures.ts';

describe('lorafuse worker process', () => {
  let server: TestRedis;
  let world: JobWorld;
  let prefix: string;
  let data: { dir: string; remove(): void };
  let store: ArtifactStore;
  let jobs: JobService;
  let children: WorkerProcess[];

  before(async () => {
    server = await startTestRedis();
  });
  after(async () => {
    await server.stop();
  });
  beforeEach(async () => {
    world = await openJobWorld(server.url, 'proc');
    ({ prefix, data, store, jobs } = world);
    children = [];
  });
  afterEach(async () => {
    for (const worker of children) await worker.kill();
    await world.close();
  });

  function spawnWorker(extraEnv: Record<string, string> = {}): WorkerProcess {
    const worker = spawnWorkerProcess({
      REDIS_URL: server.url,
      LORAFUSE_QUEUE_PREFIX: prefix,
      LORAFUSE_DATA_DIR: data.dir,
      LOG_LEVEL: 'info',
      LORAFUSE_WORKER_LOCK_MS: '1000',
      LORAFUSE_WORKER_STALLED_MS: '500',
      ...extraEnv,
    });
    children.push(worker);
    return worker;
  }

  async function expectedMerge(payload: Awaited<ReturnType<typeof bigModels>>): Promise<Map<string, number>> {
    // The reference is the same recipe run again undisturbed: a merge is deterministic.
    const again = await jobs.enqueueMerge(payload);
    const done = await waitForState(jobs, again.id, ['completed', 'failed']);
    assert.equal(done.state, 'completed', JSON.stringify(done.error));
    return sums((done.result as MergeJobResult).artifact.id);
  }

  async function sums(id: string): Promise<Map<string, number>> {
    const record = await store.get(id);
    assert.ok(record);
    const checkpoint = await Checkpoint.openFiles(store.filePaths(record));
    try {
      const out = new Map<string, number>();
      for (const name of checkpoint.names()) {
        const values = await checkpoint.readFloat32(name);
        let sum = 0;
        for (let i = 0; i < values.length; i++) sum += values[i] * ((i % 7) + 1);
        out.set(name, sum);
      }
      return out;
    } finally {
      await checkpoint.close();
    }
  }

  it('recovers a job whose worker was SIGKILLed mid-merge: completed, correct, nothing left behind', async () => {
    const payload = await bigModels(store, data.dir, { models: 3, tensors: 24, rows: 512, cols: 1024 });
    const modelsBefore = await store.count('model');
    const first = spawnWorker();
    const queued = await jobs.enqueueMerge(payload);
    await waitFor('the job to be merging', async () => {
      const view = await jobs.get(queued.id);
      return view?.state === 'active' && (view.progress?.tensorsDone as number) > 0;
    });
    process.kill(-(first.child.pid as number), 'SIGKILL');
    const killed = await first.exited;
    assert.equal(killed.signal, 'SIGKILL');
    assert.equal(await store.count('model'), modelsBefore, 'no artifact from the killed attempt');

    spawnWorker();
    const done = await waitForState(jobs, queued.id, ['completed', 'failed']);
    assert.equal(done.state, 'completed', JSON.stringify(done.error));
    assert.equal(await store.count('model'), modelsBefore + 1, 'exactly one result artifact');
    assert.deepEqual(leftoverWorkDirs(data.dir), [], 'the killed attempt left no work folder');
    const recovered = await sums((done.result as MergeJobResult).artifact.id);
    const reference = await expectedMerge(payload);
    assert.equal(recovered.size, 24);
    for (const [name, value] of reference) assert.equal(recovered.get(name), value, name);
  });

  it('on SIGTERM finishes the active job, then exits 0', async () => {
    const payload = await bigModels(store, data.dir, { models: 3, tensors: 8, rows: 512, cols: 512 });
    const worker = spawnWorker({ LORAFUSE_WORKER_LOCK_MS: '30000', LORAFUSE_WORKER_STALLED_MS: '30000' });
    const queued = await jobs.enqueueMerge(payload);
    await waitForState(jobs, queued.id, ['active']);
    worker.child.kill('SIGTERM');
    const exit = await worker.exited;
    assert.equal(exit.code, 0, worker.output());
    const view = await jobs.get(queued.id);
    assert.equal(view?.state, 'completed', worker.output());
    assert.deepEqual(leftoverWorkDirs(data.dir), []);
  });

  it('on SIGTERM during start-up, with a job already waiting, finishes that job, then exits 0', async () => {
    // The job is queued before the worker starts, so the worker takes it while still starting up.
    const payload = await bigModels(store, data.dir, { models: 3, tensors: 8, rows: 512, cols: 512 });
    const queued = await jobs.enqueueMerge(payload);
    const worker = spawnWorker({ LORAFUSE_WORKER_LOCK_MS: '30000', LORAFUSE_WORKER_STALLED_MS: '30000' });
    await waitForState(jobs, queued.id, ['active']);
    worker.child.kill('SIGTERM');
    const exit = await worker.exited;
    assert.equal(exit.code, 0, worker.output());
    assert.equal((await jobs.get(queued.id))?.state, 'completed', worker.output());
    assert.deepEqual(leftoverWorkDirs(data.dir), []);
  });

  it('on SIGTERM past the grace period exits, and another worker recovers the unfinished job', async () => {
    const payload = await bigModels(store, data.dir, { models: 3, tensors: 24, rows: 512, cols: 1024 });
    const modelsBefore = await store.count('model');
    const first = spawnWorker({ LORAFUSE_SHUTDOWN_GRACE_MS: '200' });
    const queued = await jobs.enqueueMerge(payload);
    await waitFor('the job to be merging', async () => {
      const view = await jobs.get(queued.id);
      return view?.state === 'active' && (view.progress?.tensorsDone as number) > 0;
    });
    first.child.kill('SIGTERM');
    const exit = await first.exited;
    assert.equal(exit.code, 0, first.output());
    assert.match(first.output(), /grace period over/);
    assert.equal(await store.count('model'), modelsBefore, 'the interrupted attempt stored nothing');

    spawnWorker();
    const done = await waitForState(jobs, queued.id, ['completed', 'failed']);
    assert.equal(done.state, 'completed', JSON.stringify(done.error));
    assert.equal(await store.count('model'), modelsBefore + 1);
    assert.deepEqual(leftoverWorkDirs(data.dir), []);
  });

  it('refuses to start without REDIS_URL and names the bad variable on a config error (exit 2)', async () => {
    const missing = spawnWorker({ REDIS_URL: '' });
    assert.equal((await missing.exited).code, 2);
    assert.match(missing.output(), /needs REDIS_URL/);
    const bad = spawnWorker({ LORAFUSE_WORKER_CONCURRENCY: 'many' });
    assert.equal((await bad.exited).code, 2);
    assert.match(bad.output(), /LORAFUSE_WORKER_CONCURRENCY/);
  });
});
