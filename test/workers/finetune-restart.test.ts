// A fine-tune survives its worker: `lorafuse worker` is SIGKILLed (its whole process group, as a
// crashed machine would be) mid-training, a new one recovers the stalled job, and training resumes
// from the last checkpoint in the job's folder instead of starting over.
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { Redis } from 'ioredis';
import { createApiRedis, type FinetuneJobResult, JobService } from '../../src/queue/index.ts';
import { ArtifactStore } from '../../src/store/index.ts';
import { finetuneJobDir } from '../../workers/finetune/run-finetune-job.ts';
import { startTestRedis, type TestRedis, tempDir, uniquePrefix } from '../helpers/redis.ts';
import { waitFor, waitForState } from './fixtures.ts';
import { ingestMlpDataset, ingestMlpModel } from './training-fixtures.ts';

const BIN = path.resolve(import.meta.dirname, '../../bin/lorafuse.js');

describe('a fine-tune whose worker is killed', () => {
  let server: TestRedis;
  let redis: Redis;
  let jobs: JobService;
  let store: ArtifactStore;
  const prefix = uniquePrefix('restart');
  const data = tempDir('lorafuse-restart');
  const children: ChildProcess[] = [];
  let output = '';

  before(async () => {
    server = await startTestRedis();
    redis = createApiRedis(server.url);
    store = new ArtifactStore({ redis, dataDir: data.dir, prefix });
    await store.init();
    jobs = new JobService({ redis, prefix });
  });
  after(async () => {
    for (const child of children) {
      if (child.exitCode === null && child.signalCode === null) {
        process.kill(-(child.pid as number), 'SIGKILL');
        await new Promise((resolve) => child.once('exit', resolve));
      }
    }
    await jobs.close();
    redis.disconnect();
    await server.stop();
    data.remove();
  });

  function spawnWorker(): { child: ChildProcess; exited: Promise<NodeJS.Signals | null> } {
    const child = spawn(process.execPath, [BIN, 'worker'], {
      env: {
        ...process.env,
        REDIS_URL: server.url,
        LORAFUSE_QUEUE_PREFIX: prefix,
        LORAFUSE_DATA_DIR: data.dir,
        LORAFUSE_BACKEND: process.env.LORAFUSE_BACKEND ?? 'wasm',
        LOG_LEVEL: 'warn',
        LORAFUSE_WORKER_LOCK_MS: '1000',
        LORAFUSE_WORKER_STALLED_MS: '500',
      },
      // Its own process group, so that the kill takes its sandboxed children with it.
      detached: true,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    child.stdout?.on('data', (chunk) => {
      output += chunk;
    });
    child.stderr?.on('data', (chunk) => {
      output += chunk;
    });
    children.push(child);
    return {
      child,
      exited: new Promise((resolve) => child.once('exit', (_code, signal) => resolve(signal))),
    };
  }

  it('completes after a restart, resuming from a checkpoint (resumedFromStep > 0) with the whole loss curve', async () => {
    const model = await ingestMlpModel(store, data.dir);
    const dataset = await ingestMlpDataset(store, data.dir, { n: 200 });
    const hyperparameters = { rank: 4, steps: 600, batch_size: 16, checkpoint_every: 20, eval_every: 300 };
    const { job: queued } = await jobs.submit('finetune', {
      recipe: { model, dataset: dataset.id, mode: 'lora', ...hyperparameters, seed: 1 },
      model,
      dataset: dataset.id,
      mode: 'lora',
      hyperparameters,
      seed: 1,
      inputs: [model, dataset.id],
    });
    const first = spawnWorker();
    const killedAt = await waitFor(
      'training past the first checkpoints',
      async () => {
        const view = await jobs.get(queued.id);
        const step = view?.state === 'active' ? (view.progress?.step as number) : 0;
        return step > 40 ? step : null;
      },
      30_000,
    ).catch(async (error) => {
      const view = JSON.stringify(await jobs.get(queued.id));
      throw new Error(`${error.message}; job ${view}; worker output:\n${output}`);
    });
    process.kill(-(first.child.pid as number), 'SIGKILL');
    assert.equal(await first.exited, 'SIGKILL');
    const checkpoints = path.join(finetuneJobDir(data.dir, queued.id), 'checkpoints');
    assert.ok(readdirSync(checkpoints).length > 0, 'the killed attempt left its checkpoints');
    assert.equal(await store.count('adapter'), 0);

    spawnWorker();
    const done = await waitForState(jobs, queued.id, ['completed', 'failed'], 60_000);
    assert.equal(done.state, 'completed', JSON.stringify(done.error));
    const result = done.result as FinetuneJobResult;
    assert.ok(
      result.resumedFromStep !== null && result.resumedFromStep > 0,
      `resumed from ${result.resumedFromStep}`,
    );
    // Progress is reported every 200 ms and a checkpoint being written at the kill is skipped, so the
    // resume point is within two checkpoints of the step seen before the kill.
    assert.ok(
      result.resumedFromStep >= killedAt - 40 && result.resumedFromStep < 600,
      `resumed from ${result.resumedFromStep}, killed after step ${killedAt}`,
    );
    assert.equal(result.resumedFromStep % 20, 0, 'a checkpoint step');
    assert.equal(result.steps, 600);
    assert.deepEqual(
      result.lossCurve.map((point) => point.step),
      Array.from({ length: 600 }, (_, i) => i + 1),
      'the curve before the kill came back with the checkpoint',
    );
    assert.equal(await store.count('adapter'), 1);
    assert.equal(
      existsSync(finetuneJobDir(data.dir, queued.id)),
      false,
      'the job folder is removed at the end',
    );
  });
});
