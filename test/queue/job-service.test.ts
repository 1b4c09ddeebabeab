import assert from 'node:assert/strict';
import { once } from 'node:events';
import { after, afterEach, before, beforeEach, describe, it } from 'node:test';
import { UnrecoverableError, Worker } from 'bullmq';
import type { Redis } from 'ioredis';
import {
  CANCELLED_REASON,
  createApiRedis,
  createWorkerRedis,
  IdempotencyKeyReuseError,
  InvalidCursorError,
  JobNotCancellableError,
  JobNotFoundError,
  JobService,
  jobKeys,
  type MergeJobPayload,
  QUEUE_NAMES,
} from '../../src/queue/index.ts';
import { startTestRedis, type TestRedis, uniquePrefix } from '../helpers/redis.ts';
import { HANG_GUARD_MS, waitFor } from '../helpers/wait.ts';

const payload = (inputs: string[], weight = 1): MergeJobPayload => ({
  recipe: { merge_method: 'linear', models: inputs.map((model) => ({ model, parameters: { weight } })) },
  inputs,
  seed: 7,
});

/** Commands the server has processed (INFO stats): what a read costs, counted. */
async function commandsProcessed(redis: Redis): Promise<number> {
  return Number(/total_commands_processed:(\d+)/.exec(await redis.info('stats'))?.[1]);
}

const until = <T>(what: string, probe: () => Promise<T | null | undefined | false>) =>
  waitFor(what, probe, HANG_GUARD_MS, 25);

describe('JobService', () => {
  let server: TestRedis;
  let redis: Redis;
  let prefix: string;
  let jobs: JobService;
  let workers: Worker[];
  let workerConnections: Redis[];

  before(async () => {
    server = await startTestRedis();
  });
  after(async () => {
    await server.stop();
  });
  beforeEach(() => {
    prefix = uniquePrefix('jobs');
    redis = createApiRedis(server.url);
    jobs = new JobService({ redis, prefix });
    workers = [];
    workerConnections = [];
  });
  afterEach(async () => {
    await Promise.all(workers.map((worker) => worker.close(true)));
    for (const connection of workerConnections) connection.disconnect();
    await jobs.close();
    redis.disconnect();
  });

  function startWorker(processor: (job: { id?: string; data: MergeJobPayload }) => Promise<unknown>) {
    const connection = createWorkerRedis(server.url);
    workerConnections.push(connection);
    const worker = new Worker(QUEUE_NAMES.merge, processor, {
      connection,
      prefix,
    });
    workers.push(worker);
    return worker;
  }

  it('submits a queued job with our own id, timestamps and recipe', async () => {
    const view = await jobs.enqueueMerge(payload(['m1', 'm2']));
    assert.match(view.id, /^job_[0-9a-f-]{36}$/);
    assert.equal(view.type, 'merge');
    assert.equal(view.state, 'queued');
    assert.equal(view.attempts, 0);
    assert.equal(view.progress, null);
    assert.equal(view.startedAt, null);
    assert.ok(!Number.isNaN(Date.parse(view.createdAt)));
    assert.deepEqual(view.recipe, payload(['m1', 'm2']).recipe);
    assert.deepEqual(await jobs.get(view.id), view);
    assert.equal(await jobs.get('job_unknown'), null);
  });

  it('reads a known job without its type and owner, never across projects, and keeps BullMQ off the API connection', async () => {
    const prefix = uniquePrefix('jobs');
    const api = createApiRedis(server.url);
    const bullmq = () => createApiRedis(server.url, undefined, undefined, { autoPipelining: false });
    const queueRedis = bullmq();
    const service = new JobService({ redis: api, prefix, queueRedis });
    // A second API process: it has read nothing yet.
    const other = new JobService({ redis: api, prefix, queueRedis: bullmq() });
    try {
      const mine = service.forProject('team-a');
      const theirs = service.forProject('team-b');
      const view = await mine.enqueueMerge(payload(['m1']));
      assert.equal(await theirs.get(view.id), null, 'another project, first read');
      assert.deepEqual(await mine.get(view.id), view);
      assert.equal(await theirs.get(view.id), null, 'another project, type and owner known');
      // What a read costs the server, first seen (the other process) and known (this one): the type and project.
      const cost = async (read: () => Promise<unknown>) => {
        const before = await commandsProcessed(api);
        await read();
        return (await commandsProcessed(api)) - before;
      };
      const first = await cost(() => other.forProject('team-a').get(view.id));
      const known = await cost(() => mine.get(view.id));
      assert.equal(first - known, 2);
      const cancelled = await mine.cancel(view.id);
      assert.equal((await mine.get(view.id))?.state, cancelled.state);
      // BullMQ's Lua scripts stayed on its connection (ioredis copies every script onto each auto-pipelined batch),
      // and the job view's script is sent as EVALSHA, not defined on the API's (readJobSnapshot says why).
      assert.equal(Object.keys((api as unknown as { scriptsSet: object }).scriptsSet).length, 0);
      assert.ok(Object.keys((queueRedis as unknown as { scriptsSet: object }).scriptsSet).length > 0);
    } finally {
      await service.close();
      await other.close();
      api.disconnect();
    }
    // The service closes the connection it was given for BullMQ (a hang here says it did not).
    if (queueRedis.status !== 'end') await once(queueRedis, 'end');
  });

  it('maps active, completed and failed, and a cancelled-by-processor failure to cancelled', async () => {
    let release: () => void = () => undefined;
    const gate = new Promise<void>((resolve) => {
      release = resolve;
    });
    startWorker(async (job) => {
      const weight = (job.data.recipe.models as Array<{ parameters: { weight: number } }>)[0].parameters
        .weight;
      if (weight === 1) {
        await gate;
        return { artifact: { kind: 'model', id: 'result-1' } };
      }
      if (weight === 2) throw new UnrecoverableError('bad recipe');
      throw new UnrecoverableError(CANCELLED_REASON);
    });
    const ok = await jobs.enqueueMerge(payload(['a'], 1));
    const active = await until('active', async () => {
      const view = await jobs.get(ok.id);
      return view?.state === 'active' && view;
    });
    assert.ok(active.startedAt);
    assert.equal(active.attempts, 1);
    release();
    const done = await until('completed', async () => {
      const view = await jobs.get(ok.id);
      return view?.state === 'completed' && view;
    });
    assert.deepEqual(done.result, { artifact: { kind: 'model', id: 'result-1' } });
    assert.ok(done.finishedAt);
    assert.equal(done.error, null);

    const bad = await jobs.enqueueMerge(payload(['a'], 2));
    const failed = await until('failed', async () => {
      const view = await jobs.get(bad.id);
      return view?.state === 'failed' && view;
    });
    assert.deepEqual(failed.error, { type: 'internal', message: 'bad recipe' });
    assert.equal(failed.attempts, 1, 'an UnrecoverableError is not retried');

    const stopped = await jobs.enqueueMerge(payload(['a'], 3));
    const cancelled = await until('cancelled', async () => {
      const view = await jobs.get(stopped.id);
      return view?.state === 'cancelled' && view;
    });
    assert.equal(cancelled.error, null);
  });

  it('retries an infrastructure fault with backoff: queued again between attempts, then completed', async () => {
    let calls = 0;
    startWorker(async () => {
      calls += 1;
      if (calls === 1) throw new Error('ECONNRESET while reading a blob');
      return { artifact: { kind: 'model', id: 'after-retry' } };
    });
    const view = await jobs.enqueueMerge(payload(['m1']));
    const waiting = await until('the retry backoff', async () => {
      const current = await jobs.get(view.id);
      return current?.state === 'queued' && current.attempts === 1 && current;
    });
    assert.equal(waiting.error, null, 'a job waiting to retry has not failed');
    const done = await until('completed', async () => {
      const current = await jobs.get(view.id);
      return current?.state === 'completed' && current;
    });
    assert.equal(done.attempts, 2);
    assert.equal(calls, 2);
  });

  it('reads the error kind a processor recorded', async () => {
    startWorker(async (job) => {
      await redis.set(
        jobKeys(prefix).error(job.id as string),
        JSON.stringify({ type: 'invalid_input', message: 'no such tensor' }),
      );
      throw new UnrecoverableError('no such tensor');
    });
    const view = await jobs.enqueueMerge(payload(['x']));
    const failed = await until('failed', async () => {
      const current = await jobs.get(view.id);
      return current?.state === 'failed' && current;
    });
    assert.deepEqual(failed.error, { type: 'invalid_input', message: 'no such tensor' });
  });

  it('cancels a queued job: it leaves the queue and still reads as cancelled', async () => {
    const view = await jobs.enqueueMerge(payload(['m1']));
    const cancelled = await jobs.cancel(view.id);
    assert.equal(cancelled.state, 'cancelled');
    assert.ok(cancelled.finishedAt);
    assert.equal((await jobs.get(view.id))?.state, 'cancelled');
    assert.equal(await jobs.queue('merge').getWaitingCount(), 0);
    await assert.rejects(jobs.cancel(view.id), (err: unknown) => {
      assert.ok(err instanceof JobNotCancellableError);
      assert.equal(err.state, 'cancelled');
      return true;
    });
    await assert.rejects(jobs.cancel('job_missing'), JobNotFoundError);
    const processed: string[] = [];
    startWorker(async (job) => {
      processed.push(job.id as string);
      return {};
    });
    const later = await jobs.enqueueMerge(payload(['m2']));
    await until('the next job to complete', async () => (await jobs.get(later.id))?.state === 'completed');
    assert.deepEqual(processed, [later.id], 'the cancelled job never ran');
  });

  it('flags an active job for cancellation and refuses to cancel a completed one', async () => {
    let release: () => void = () => undefined;
    const gate = new Promise<void>((resolve) => {
      release = resolve;
    });
    startWorker(async (job) => {
      await gate;
      if (await redis.exists(jobKeys(prefix).cancel(job.id as string))) {
        throw new UnrecoverableError(CANCELLED_REASON);
      }
      return {};
    });
    const view = await jobs.enqueueMerge(payload(['m1']));
    await until('active', async () => (await jobs.get(view.id))?.state === 'active');
    const requested = await jobs.cancel(view.id);
    assert.equal(requested.state, 'active');
    assert.equal(requested.cancelRequested, true);
    release();
    await until('cancelled', async () => (await jobs.get(view.id))?.state === 'cancelled');

    const other = await jobs.enqueueMerge(payload(['m2']));
    await until('completed', async () => (await jobs.get(other.id))?.state === 'completed');
    await assert.rejects(jobs.cancel(other.id), JobNotCancellableError);
  });

  it('pages newest first with a cursor that new submissions do not disturb', async () => {
    const ids: string[] = [];
    for (let i = 0; i < 7; i++) ids.push((await jobs.enqueueMerge(payload([`m${i}`]))).id);
    const first = await jobs.list({ limit: 3 });
    assert.deepEqual(
      first.items.map((job) => job.id),
      [ids[6], ids[5], ids[4]],
    );
    assert.ok(first.nextCursor);
    await jobs.enqueueMerge(payload(['late']));
    const second = await jobs.list({ limit: 3, cursor: first.nextCursor as string });
    assert.deepEqual(
      second.items.map((job) => job.id),
      [ids[3], ids[2], ids[1]],
    );
    const third = await jobs.list({ limit: 3, cursor: second.nextCursor as string });
    assert.deepEqual(
      third.items.map((job) => job.id),
      [ids[0]],
    );
    assert.equal(third.nextCursor, null);
    await assert.rejects(jobs.list({ limit: 3, cursor: 'garbage' }), InvalidCursorError);
  });

  it('filters the listing by state and type', async () => {
    const a = await jobs.enqueueMerge(payload(['a']));
    const b = await jobs.enqueueMerge(payload(['b']));
    const c = await jobs.enqueueMerge(payload(['c']));
    await jobs.cancel(b.id);
    const queued = await jobs.list({ state: 'queued', limit: 1 });
    assert.deepEqual(
      queued.items.map((job) => job.id),
      [c.id],
    );
    const rest = await jobs.list({ state: 'queued', limit: 1, cursor: queued.nextCursor as string });
    assert.deepEqual(
      rest.items.map((job) => job.id),
      [a.id],
    );
    assert.equal(rest.nextCursor, null);
    assert.deepEqual(
      (await jobs.list({ state: 'cancelled', limit: 10 })).items.map((job) => job.id),
      [b.id],
    );
    assert.equal((await jobs.list({ type: 'merge', limit: 10 })).items.length, 3);
    assert.equal((await jobs.list({ type: 'finetune', limit: 10 })).items.length, 0);
  });

  it('returns the same job for the same idempotency key and body, and refuses another body', async () => {
    const first = await jobs.submit('merge', payload(['m1']), { idempotencyKey: 'k-1' });
    assert.equal(first.created, true);
    const again = await jobs.submit('merge', payload(['m1']), { idempotencyKey: 'k-1' });
    assert.equal(again.created, false);
    assert.equal(again.job.id, first.job.id);
    await assert.rejects(
      jobs.submit('merge', payload(['m2']), { idempotencyKey: 'k-1' }),
      (err: unknown) => err instanceof IdempotencyKeyReuseError && err.jobId === first.job.id,
    );
    const other = await jobs.enqueueMerge(payload(['m1']), { idempotencyKey: 'k-2' });
    assert.notEqual(other.id, first.job.id);
    assert.equal(await jobs.queue('merge').getWaitingCount(), 2);
  });

  it('names the queued and active jobs that read an artifact', async () => {
    let release: () => void = () => undefined;
    const gate = new Promise<void>((resolve) => {
      release = resolve;
    });
    const running = await jobs.enqueueMerge(payload(['art-1', 'art-2']));
    startWorker(async () => {
      await gate;
      return {};
    });
    await until('active', async () => (await jobs.get(running.id))?.state === 'active');
    const waiting = await jobs.enqueueMerge(payload(['art-2', 'art-3']));
    const cancelled = await jobs.enqueueMerge(payload(['art-4']));
    await jobs.cancel(cancelled.id);
    assert.deepEqual(await jobs.jobsUsingArtifact('art-1'), [running.id]);
    assert.deepEqual((await jobs.jobsUsingArtifact('art-2')).sort(), [running.id, waiting.id].sort());
    assert.deepEqual(await jobs.jobsUsingArtifact('art-4'), []);
    release();
    await until('both done', async () => (await jobs.get(waiting.id))?.state === 'completed');
    assert.deepEqual(await jobs.jobsUsingArtifact('art-2'), [], 'finished jobs no longer hold it');
  });
});
