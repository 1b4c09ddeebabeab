// Job failures are classified one way for every queue: typed input errors are `invalid_input` (no
// retry), a vanished input `artifact_not_found`, and anything else `internal` with a correlation id
// that is logged beside the stack and returned in the job's error (the raw message is not).
import assert from 'node:assert/strict';
import { after, afterEach, before, beforeEach, describe, it } from 'node:test';
import { UnrecoverableError, Worker } from 'bullmq';
import type { Redis } from 'ioredis';
import { MergePlanError, RecipeError } from '../../src/merge/index.ts';
import { ModelInputError } from '../../src/model/errors.ts';
import {
  CANCELLED_REASON,
  createApiRedis,
  createWorkerRedis,
  JobService,
  jobKeys,
  type MergeJobPayload,
  QUEUE_NAMES,
} from '../../src/queue/index.ts';
import { MissingArtifactError } from '../../src/store/index.ts';
import { SafetensorsError } from '../../src/tensors/index.ts';
import { type FailureLog, failJob, InvalidJobInputError } from '../../workers/job-failure.ts';
import { startTestRedis, type TestRedis, uniquePrefix } from '../helpers/redis.ts';

describe('job failure classification', () => {
  let server: TestRedis;
  let redis: Redis;
  let prefix: string;
  before(async () => {
    server = await startTestRedis();
  });
  after(async () => {
    await server.stop();
  });
  beforeEach(() => {
    prefix = uniquePrefix('failure');
    redis = createApiRedis(server.url);
  });
  afterEach(() => {
    redis.disconnect();
  });

  async function fail(error: unknown, extra: { finalAttempt?: boolean; cancelledByUser?: boolean } = {}) {
    const logged: Parameters<FailureLog>[0][] = [];
    const jobId = `job_${Math.random().toString(16).slice(2)}`;
    let thrown: unknown;
    try {
      await failJob(error, {
        redis,
        prefix,
        jobId,
        cancelledByUser: extra.cancelledByUser ?? false,
        finalAttempt: extra.finalAttempt,
        log: (entry) => logged.push(entry),
      });
    } catch (caught) {
      thrown = caught;
    }
    const recorded = await redis.get(jobKeys(prefix).error(jobId));
    return { thrown, recorded: recorded ? JSON.parse(recorded) : null, logged };
  }

  it('typed input errors: invalid_input, not retried, their own message', async () => {
    const inputErrors = [
      new RecipeError('invalid_value', 'models', 'must be a list'),
      new MergePlanError('invalid_parameter', 'density must be in (0, 1]', { parameter: 'density' }),
      new ModelInputError('target modules no_such_layer match no linear module'),
      new InvalidJobInputError('the model has no config.json'),
      new SafetensorsError('bad_offsets' as never, 'model.safetensors', 'offsets overlap'),
    ];
    for (const error of inputErrors) {
      const { thrown, recorded, logged } = await fail(error);
      assert.ok(thrown instanceof UnrecoverableError, error.name);
      assert.equal(thrown.message, error.message);
      assert.deepEqual(recorded, { type: 'invalid_input', message: error.message }, error.name);
      assert.deepEqual(logged, []);
    }
    const missing = await fail(new MissingArtifactError('mdl_gone', 'model'));
    assert.equal(missing.recorded.type, 'artifact_not_found');
  });

  it('anything else: internal, with a correlation id logged with the stack and returned, not the raw message', async () => {
    const bug = new TypeError("Cannot read properties of undefined (reading 'shape')");
    const { thrown, recorded, logged } = await fail(bug);
    assert.ok(thrown instanceof UnrecoverableError, 'a bug is not retried');
    assert.equal(recorded.type, 'internal');
    assert.match(recorded.correlationId, /^[0-9a-f-]{36}$/);
    assert.ok(recorded.message.includes(recorded.correlationId));
    assert.doesNotMatch(recorded.message, /Cannot read properties/);
    assert.equal((thrown as Error).message, recorded.message);
    assert.equal(logged.length, 1);
    assert.equal(logged[0].correlationId, recorded.correlationId);
    assert.equal(logged[0].err.name, 'TypeError');
    assert.match(logged[0].err.stack ?? '', /Cannot read properties/);
  });

  it('transient faults are retried; on the final attempt they are recorded as internal too', async () => {
    const reset = Object.assign(new Error('read ECONNRESET'), { code: 'ECONNRESET' });
    const retried = await fail(reset);
    assert.equal(retried.thrown, reset, 'rethrown as is for BullMQ to retry');
    assert.equal(retried.recorded, null);
    const last = await fail(reset, { finalAttempt: true });
    assert.equal(last.thrown, reset);
    assert.equal(last.recorded.type, 'internal');
    assert.equal(last.logged[0].err.code, 'ECONNRESET');
    const cancelled = await fail(new Error('stopped'), { cancelledByUser: true });
    assert.equal((cancelled.thrown as Error).message, CANCELLED_REASON);
  });

  it('a real BullMQ job failed by failJob reads back through the job view with its correlation id', async () => {
    const jobs = new JobService({ redis, prefix });
    const connection = createWorkerRedis(server.url);
    const worker = new Worker(
      QUEUE_NAMES.merge,
      async (job) =>
        failJob(new RangeError('Invalid typed array length: -1'), {
          redis: connection,
          prefix,
          jobId: job.id as string,
          cancelledByUser: false,
          log: () => undefined,
        }),
      { connection, prefix },
    );
    try {
      const payload: MergeJobPayload = {
        recipe: { merge_method: 'linear', models: [] },
        inputs: [],
        seed: 1,
      };
      const view = await jobs.enqueueMerge(payload);
      let failed = await jobs.get(view.id);
      for (let i = 0; i < 400 && failed?.state !== 'failed'; i++) {
        await new Promise((resolve) => setTimeout(resolve, 25));
        failed = await jobs.get(view.id);
      }
      assert.equal(failed?.state, 'failed');
      assert.equal(failed?.error?.type, 'internal');
      assert.match(failed?.error?.correlationId ?? '', /^[0-9a-f-]{36}$/);
      assert.equal(failed?.attempts, 1, 'not retried');
    } finally {
      await worker.close(true);
      connection.disconnect();
      await jobs.close();
    }
  });
});
