import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import path from 'node:path';
import { describe, it } from 'node:test';
import { parseWorkerArguments } from '../../src/cli/worker-command.ts';
import {
  checkHeartbeat,
  HEARTBEAT_STALE_MS,
  heartbeatFile,
  startHeartbeat,
} from '../../src/cli/worker-heartbeat.ts';
import { ConfigError, loadConfig } from '../../src/config.ts';
import { tempDir } from '../helpers/redis.ts';
import { HANG_GUARD_MS, waitFor } from '../helpers/wait.ts';

const defaults = loadConfig({}).worker;

describe('lorafuse worker options', () => {
  it('serves every queue, one job of each at a time, by default', () => {
    assert.deepEqual(defaults, {
      queues: ['merge', 'finetune', 'evaluate', 'analyze'],
      concurrency: { merge: 1, finetune: 1, evaluate: 1, analyze: 1 },
    });
    assert.deepEqual(parseWorkerArguments([], defaults), { plan: defaults, health: false });
  });

  it('reads --queues and --concurrency in both spellings; they override the environment', () => {
    const env = loadConfig({ LORAFUSE_WORKER_QUEUES: 'merge', LORAFUSE_WORKER_CONCURRENCY: '3' }).worker;
    assert.deepEqual(env, {
      queues: ['merge'],
      concurrency: { merge: 3, finetune: 1, evaluate: 3, analyze: 3 },
    });
    const parsed = parseWorkerArguments(['--queues=finetune,evaluate', '--concurrency', 'finetune=2'], env);
    assert.deepEqual(parsed.plan, {
      queues: ['finetune', 'evaluate'],
      concurrency: { merge: 3, finetune: 2, evaluate: 3, analyze: 3 },
    });
    assert.deepEqual(parseWorkerArguments(['--concurrency', '4,finetune=2'], defaults).plan.concurrency, {
      merge: 4,
      finetune: 2,
      evaluate: 4,
      analyze: 4,
    });
    assert.equal(parseWorkerArguments(['--health'], defaults).health, true);
  });

  for (const [argv, label, pattern] of [
    [['--queues', 'merge,train'], '--queues', /unknown queue "train"/],
    [['--queues', 'merge,merge'], '--queues', /named twice/],
    [['--queues'], '--queues', /needs a value/],
    [['--concurrency', 'merge=0'], '--concurrency', /between 1 and 64/],
    [['--concurrency', 'gpu=2'], '--concurrency', /unknown queue "gpu"/],
    [['--concurrency', 'merge=two'], '--concurrency', /whole number/],
    [['--queue', 'merge'], '--queue', /unknown option/],
  ] as const) {
    it(`refuses ${argv.join(' ')} naming ${label}`, () => {
      assert.throws(
        () => parseWorkerArguments([...argv], defaults),
        (error: unknown) =>
          error instanceof ConfigError && error.variable === label && pattern.test(error.message),
      );
    });
  }

  it('names LORAFUSE_WORKER_QUEUES when the environment lists an unknown queue', () => {
    assert.throws(
      () => loadConfig({ LORAFUSE_WORKER_QUEUES: 'merge,gpu' }),
      (error: unknown) => error instanceof ConfigError && error.variable === 'LORAFUSE_WORKER_QUEUES',
    );
  });
});

describe('worker heartbeat', () => {
  it('is healthy while beating, unhealthy when stale or stopped', async () => {
    const work = tempDir('lorafuse-beat');
    try {
      const file = heartbeatFile(work.dir, {});
      assert.equal(file, path.join(work.dir, 'worker.heartbeat'));
      assert.equal(heartbeatFile(work.dir, { LORAFUSE_WORKER_HEARTBEAT_FILE: '/run/beat' }), '/run/beat');
      assert.equal((await checkHeartbeat(file)).ok, false);
      let failing = false;
      const beat = startHeartbeat(
        file,
        async () => {
          if (failing) throw new Error('redis down');
        },
        { queues: ['merge'] },
      );
      await waitForFile(file);
      assert.equal((await checkHeartbeat(file)).ok, true);
      assert.deepEqual(JSON.parse(await fs.readFile(file, 'utf8')).queues, ['merge']);
      const later = Date.now() + HEARTBEAT_STALE_MS + 1000;
      const stale = await checkHeartbeat(file, later);
      assert.equal(stale.ok, false);
      assert.match(stale.message, /s old/);
      failing = true;
      await beat.stop();
      assert.equal((await checkHeartbeat(file)).ok, false, 'a stopped worker removes its heartbeat');
    } finally {
      work.remove();
    }
  });
});

async function waitForFile(file: string): Promise<void> {
  await waitFor(`${file} to appear`, () => fs.stat(file).catch(() => null), HANG_GUARD_MS, 10);
}
