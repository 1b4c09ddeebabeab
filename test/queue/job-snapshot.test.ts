// The job view's one-script read (readJobSnapshot) against BullMQ's own Job.fromId and getJobState, on jobs in every
// state BullMQ has: the script copies BullMQ's state logic and key names, so an upgrade that changes them fails here.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { FlowProducer, Job, Queue, Worker } from 'bullmq';
import type { Redis } from 'ioredis';
import { createApiRedis, createWorkerRedis, readJobSnapshot } from '../../src/queue/index.ts';
import { startTestRedis, type TestRedis, uniquePrefix } from '../helpers/redis.ts';

describe('readJobSnapshot', () => {
  let server: TestRedis;
  let api: Redis;
  let bull: Redis;
  before(async () => {
    server = await startTestRedis();
    api = createApiRedis(server.url);
    bull = createWorkerRedis(server.url);
  });
  after(async () => {
    api.disconnect();
    bull.disconnect();
    await server.stop();
  });

  const ours = (id: string) => ({ cancelled: `c:${id}`, error: `e:${id}`, cancel: `f:${id}` });

  it('reads the record and state BullMQ reads, in every state', async () => {
    const prefix = uniquePrefix('snapshot');
    const queue = new Queue('merge', { connection: bull, prefix });
    const worker = new Worker('merge', null, { connection: bull, prefix, autorun: false });
    const flows = new FlowProducer({ connection: bull, prefix });
    try {
      // Taken by a worker, then finished by hand: one completed, one failed, one left active.
      // Ids are not BullMQ's list names: a job's key is `<prefix>:merge:<id>`, beside `<prefix>:merge:completed`.
      const take = async (name: string) => {
        await queue.add(name, { name }, { jobId: `job-${name}` });
        const job = (await worker.getNextJob(`token-${name}`)) as Job;
        assert.equal(job.id, `job-${name}`);
        return job;
      };
      await (await take('completed')).moveToCompleted({ artifact: 'a1' }, 'token-completed', false);
      await (await take('failed')).moveToFailed(new Error('boom'), 'token-failed', false);
      await take('active');
      await queue.add('delayed', {}, { jobId: 'job-delayed', delay: 60_000 });
      await queue.add('prioritized', {}, { jobId: 'job-prioritized', priority: 3 });
      await queue.add('waiting', { recipe: { merge_method: 'linear' } }, { jobId: 'job-waiting' });
      await flows.add({
        name: 'parent',
        queueName: 'merge',
        opts: { jobId: 'job-parent' },
        children: [{ name: 'child', queueName: 'other', opts: { jobId: 'job-child' } }],
      });
      await queue.pause();
      await queue.add('paused', {}, { jobId: 'job-paused' });
      // A record in none of BullMQ's lists.
      await bull.hset(queue.toKey('stray'), 'name', 'stray', 'data', '{}', 'opts', '{}', 'timestamp', '1');

      const ids = ['completed', 'failed', 'active', 'delayed', 'prioritized', 'waiting', 'parent', 'paused']
        .map((name) => `job-${name}`)
        .concat('stray');
      const states = new Set<string>();
      for (const id of ids) {
        const read = await readJobSnapshot(api, queue, id, ours(id));
        assert.ok(read.cancelled === null && read.job, id);
        const expected = (await Job.fromId(queue, id)) as Job;
        assert.equal(read.state, await queue.getJobState(id), id);
        assert.deepEqual(read.job.asJSON(), expected.asJSON(), id);
        assert.equal(read.recordedError, null);
        assert.equal(read.cancelRequested, false);
        states.add(read.state);
      }
      // Every state getJobState can answer for a record is covered.
      assert.deepEqual([...states].sort(), [
        'active',
        'completed',
        'delayed',
        'failed',
        'prioritized',
        'unknown',
        'waiting',
        'waiting-children',
      ]);
      const completed = await readJobSnapshot(api, queue, 'job-completed', ours('job-completed'));
      assert.ok(completed.cancelled === null && completed.job);
      assert.deepEqual(completed.job.returnvalue, { artifact: 'a1' });
    } finally {
      await worker.close(true);
      await flows.close();
      await queue.close();
    }
  });

  it('reads on an auto-pipelining connection with a batch pending, and after Redis lost its scripts', async () => {
    // A fresh connection whose first read shares its batch with another command: a script defined with ioredis's
    // defineCommand at that moment was missing from the batch, and the short reply crashed the process.
    const fresh = createApiRedis(server.url);
    const prefix = uniquePrefix('snapshot');
    const queue = new Queue('merge', { connection: bull, prefix });
    try {
      await queue.add('j', {}, { jobId: 'j' });
      const [pong, read] = await Promise.all([fresh.ping(), readJobSnapshot(fresh, queue, 'j', ours('j'))]);
      assert.equal(pong, 'PONG');
      assert.ok(read.cancelled === null && read.job && read.state === 'waiting');
      // A restarted server has no scripts: the read sends the script itself.
      await fresh.script('FLUSH');
      const again = await readJobSnapshot(fresh, queue, 'j', ours('j'));
      assert.ok(again.cancelled === null && again.job && again.state === 'waiting');
    } finally {
      await queue.close();
      fresh.disconnect();
    }
  });

  it('reads our cancelled record, the recorded error kind and the cancel flag; a missing job is null', async () => {
    const prefix = uniquePrefix('snapshot');
    const queue = new Queue('merge', { connection: bull, prefix });
    try {
      await queue.add('j', {}, { jobId: 'j' });
      await api.set('e:j', '{"type":"invalid_input","message":"bad"}');
      await api.set('f:j', '1');
      const read = await readJobSnapshot(api, queue, 'j', ours('j'));
      assert.ok(read.cancelled === null && read.job);
      assert.equal(read.recordedError, '{"type":"invalid_input","message":"bad"}');
      assert.equal(read.cancelRequested, true);
      assert.deepEqual(await readJobSnapshot(api, queue, 'nothing', ours('nothing')), {
        cancelled: null,
        job: null,
      });
      // Our record of a job cancelled while queued wins over whatever BullMQ still has.
      await api.set('c:j', '{"view":{"id":"j","state":"cancelled"}}');
      assert.deepEqual(await readJobSnapshot(api, queue, 'j', ours('j')), {
        cancelled: '{"view":{"id":"j","state":"cancelled"}}',
      });
    } finally {
      await queue.close();
    }
  });
});
