// Several `lorafuse worker` processes as on several machines: each its own data directory (local
// scratch only), all sharing one Redis and one S3-compatible bucket (s3rver on loopback). Jobs
// spread over the merge workers, a worker started with --queues evaluate takes no merge, and a
// SIGKILLed worker's job completes on the other with bytes equal to an undisturbed run.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { describe, it } from 'node:test';
import type { MergeJobResult } from '../../src/queue/index.ts';
import { bigModels, leftoverWorkDirs, waitFor, waitForState } from './fixtures.ts';
import { startedJob, useWorkerFleet } from './worker-fleet.ts';

const BIN = path.resolve(import.meta.dirname, '../../bin/lorafuse.js');

describe('many lorafuse worker processes sharing one Redis and one bucket', () => {
  const fleet = useWorkerFleet('many');

  async function outputDigests(result: unknown): Promise<string[]> {
    const record = await fleet.store.get((result as MergeJobResult).artifact.id);
    assert.ok(record);
    return record.files.map((file) => `${file.name}:${file.sha256}`);
  }

  it('spreads jobs over the merge workers, never to a worker of other queues; --health sees them', async () => {
    const { store, jobs, dir } = fleet;
    const a = fleet.spawn('a', ['--queues', 'merge', '--concurrency', 'merge=1']);
    const b = fleet.spawn('b', ['--queues=merge']);
    const gpu = fleet.spawn('gpu', [
      '--queues',
      'finetune,evaluate',
      '--concurrency',
      'finetune=1,evaluate=2',
    ]);
    await Promise.all([fleet.ready(a), fleet.ready(b), fleet.ready(gpu)]);
    assert.match(gpu.output(), /"queues":\["finetune","evaluate"\]/);
    assert.match(gpu.output(), /"concurrency":\{"merge":1,"finetune":1,"evaluate":2,"analyze":1\}/);

    const payload = await bigModels(store, dir, { models: 3, tensors: 8, rows: 512, cols: 512 });
    // Each merge worker runs one job at a time, so two jobs queued together land on both.
    const queued = [await jobs.enqueueMerge(payload), await jobs.enqueueMerge(payload)];
    const done = [];
    for (const job of queued) done.push(await waitForState(jobs, job.id, ['completed', 'failed']));
    for (const view of done) assert.equal(view.state, 'completed', JSON.stringify(view.error));
    const runners = queued.map((job) => [a, b].filter((worker) => startedJob(worker, job.id)));
    assert.deepEqual(
      runners.map((list) => list.length),
      [1, 1],
      'each job started exactly once',
    );
    assert.notEqual(runners[0][0], runners[1][0], 'the two jobs ran on different workers');
    for (const job of queued) assert.equal(startedJob(gpu, job.id), false);
    assert.doesNotMatch(gpu.output(), /merge job started/);
    // Same recipe, same seed, different machines: the same bytes.
    assert.deepEqual(await outputDigests(done[0].result), await outputDigests(done[1].result));

    const health = spawnSync(process.execPath, [BIN, 'worker', '--health'], {
      env: { ...process.env, ...a.env },
      encoding: 'utf8',
    });
    assert.equal(health.status, 0, health.stderr);
    const absent = spawnSync(process.execPath, [BIN, 'worker', '--health'], {
      env: { ...process.env, ...a.env, LORAFUSE_DATA_DIR: path.join(dir, 'nobody') },
      encoding: 'utf8',
    });
    assert.equal(absent.status, 1);
    assert.match(absent.stderr, /no heartbeat/);
  });

  it('completes on the other worker the job of a worker killed mid-merge, with the same bytes', async () => {
    const { store, jobs, dir } = fleet;
    const a = fleet.spawn('a', ['--queues', 'merge']);
    const b = fleet.spawn('b', ['--queues', 'merge']);
    await Promise.all([fleet.ready(a), fleet.ready(b)]);
    const payload = await bigModels(store, dir, { models: 3, tensors: 24, rows: 512, cols: 1024 });
    const modelsBefore = await store.count('model');
    const queued = await jobs.enqueueMerge(payload);
    await waitFor('the job to be merging', async () => {
      const view = await jobs.get(queued.id);
      return view?.state === 'active' && (view.progress?.tensorsDone as number) > 0;
    });
    const victim = startedJob(a, queued.id) ? a : b;
    const survivor = victim === a ? b : a;
    assert.ok(startedJob(victim, queued.id));
    process.kill(-(victim.child.pid as number), 'SIGKILL');
    assert.equal((await victim.exited).signal, 'SIGKILL');

    const done = await waitForState(jobs, queued.id, ['completed', 'failed']);
    assert.equal(done.state, 'completed', JSON.stringify(done.error));
    assert.ok(startedJob(survivor, queued.id), 'the surviving worker picked the job up');
    assert.equal(await store.count('model'), modelsBefore + 1, 'exactly one result artifact');
    assert.deepEqual(leftoverWorkDirs(survivor.dataDir), []);

    const again = await jobs.enqueueMerge(payload);
    const reference = await waitForState(jobs, again.id, ['completed', 'failed']);
    assert.equal(reference.state, 'completed', JSON.stringify(reference.error));
    assert.deepEqual(await outputDigests(done.result), await outputDigests(reference.result));
  });
});
