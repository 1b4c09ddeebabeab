// A fine-tune survives its worker: `lorafuse worker` is SIGKILLed (its whole process group, as a
// crashed machine would be) mid-training, a new one recovers the stalled job, and training resumes
// from the last checkpoint in the job's folder instead of starting over. The runtime promises that a
// resumed run is bit-identical to an uninterrupted one (README, Training): the same job run again
// without a kill must give byte-identical weights and the same loss curve.
import assert from 'node:assert/strict';
import { existsSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { Redis } from 'ioredis';
import { readSafetensors } from '../../src/model/io/host-tensors.ts';
import { createApiRedis, type FinetuneJobResult, JobService } from '../../src/queue/index.ts';
import { type ArtifactRecord, ArtifactStore } from '../../src/store/index.ts';
import { finetuneJobDir } from '../../workers/finetune/run-finetune-job.ts';
import { startTestRedis, type TestRedis, tempDir, uniquePrefix } from '../helpers/redis.ts';
import { waitFor } from '../helpers/wait.ts';
import { spawnWorkerProcess, type WorkerProcess } from '../helpers/worker-process.ts';
import { waitForState } from './fixtures.ts';
import { ingestMlpDataset, ingestMlpModel } from './training-fixtures.ts';

/** The step of the newest checkpoint that reads back whole (a file torn by the kill does not count). */
async function lastCompleteCheckpoint(dir: string): Promise<number> {
  const files = readdirSync(dir)
    .filter((name) => /^step-\d+\.safetensors$/.test(name))
    .sort()
    .reverse();
  for (const file of files) {
    const read = await readSafetensors(path.join(dir, file)).catch(() => null);
    if (read) return JSON.parse(read.metadata.progress as string).step as number;
  }
  return 0;
}

describe('a fine-tune whose worker is killed', () => {
  let server: TestRedis;
  let redis: Redis;
  let jobs: JobService;
  let store: ArtifactStore;
  const prefix = uniquePrefix('restart');
  const data = tempDir('lorafuse-restart');
  const workers: WorkerProcess[] = [];

  before(async () => {
    server = await startTestRedis();
    redis = createApiRedis(server.url);
    store = new ArtifactStore({ redis, dataDir: data.dir, prefix });
    await store.init();
    jobs = new JobService({ redis, prefix });
  });
  after(async () => {
    for (const worker of workers) await worker.kill();
    await jobs.close();
    redis.disconnect();
    await server.stop();
    data.remove();
  });

  function spawnWorker(): WorkerProcess {
    const worker = spawnWorkerProcess({
      REDIS_URL: server.url,
      LORAFUSE_QUEUE_PREFIX: prefix,
      LORAFUSE_DATA_DIR: data.dir,
      LORAFUSE_BACKEND: process.env.LORAFUSE_BACKEND ?? 'wasm',
      LOG_LEVEL: 'warn',
      LORAFUSE_WORKER_LOCK_MS: '1000',
      LORAFUSE_WORKER_STALLED_MS: '500',
    });
    workers.push(worker);
    return worker;
  }
  const output = () => workers.map((worker) => worker.output()).join('\n');

  it('completes after a restart, resuming from its last checkpoint, bit-identical to an uninterrupted run', async () => {
    const model = await ingestMlpModel(store, data.dir);
    const dataset = await ingestMlpDataset(store, data.dir, { n: 200 });
    const hyperparameters = { rank: 4, steps: 600, batch_size: 16, checkpoint_every: 20, eval_every: 300 };
    const payload = {
      recipe: { model, dataset: dataset.id, mode: 'lora', ...hyperparameters, seed: 1 },
      model,
      dataset: dataset.id,
      mode: 'lora' as const,
      hyperparameters,
      seed: 1,
      inputs: [model, dataset.id],
    };
    const { job: queued } = await jobs.submit('finetune', payload);
    const first = spawnWorker();
    await waitFor('training past the first checkpoints', async () => {
      const view = await jobs.get(queued.id);
      const step = view?.state === 'active' ? (view.progress?.step as number) : 0;
      return step > 40 ? step : null;
    }).catch(async (error) => {
      const view = JSON.stringify(await jobs.get(queued.id));
      throw new Error(`${error.message}; job ${view}; worker output:\n${output()}`);
    });
    await first.kill();
    assert.equal((await first.exited).signal, 'SIGKILL');
    const checkpoints = path.join(finetuneJobDir(data.dir, queued.id), 'checkpoints');
    const recorded = await lastCompleteCheckpoint(checkpoints);
    assert.ok(recorded >= 20, `the killed attempt left a complete checkpoint (step ${recorded})`);
    assert.equal(await store.count('adapter'), 0, 'no artifact from the killed attempt');

    spawnWorker();
    const done = await waitForState(jobs, queued.id, ['completed', 'failed']);
    assert.equal(done.state, 'completed', `${JSON.stringify(done.error)}\n${output()}`);
    const result = done.result as FinetuneJobResult;
    assert.equal(result.resumedFromStep, recorded, 'resumed from the checkpoint the killed attempt recorded');
    assert.equal(result.steps, 600);
    assert.deepEqual(
      result.lossCurve.map((point) => point.step),
      Array.from({ length: 600 }, (_, i) => i + 1),
      'the curve before the kill came back with the checkpoint',
    );
    assert.equal(await store.count('adapter'), 1, 'exactly one artifact');
    assert.equal(
      existsSync(finetuneJobDir(data.dir, queued.id)),
      false,
      'the job folder is removed at the end',
    );

    // The same fine-tune, never interrupted: the resumed job's weights are the same bytes.
    const { job: reference } = await jobs.submit('finetune', payload);
    const undisturbed = await waitForState(jobs, reference.id, ['completed', 'failed']);
    assert.equal(undisturbed.state, 'completed', JSON.stringify(undisturbed.error));
    const expected = undisturbed.result as FinetuneJobResult;
    assert.equal(expected.resumedFromStep, null);
    assert.deepEqual(result.lossCurve, expected.lossCurve, 'the same loss at every step');
    const weights = (record: ArtifactRecord | null) =>
      Object.fromEntries(
        (record?.files ?? [])
          .filter((file) => file.name.endsWith('.safetensors'))
          .map((file) => [file.name, file.sha256]),
      );
    const resumedWeights = weights(await store.get(result.artifact.id));
    assert.ok(resumedWeights['adapter_model.safetensors'], JSON.stringify(resumedWeights));
    assert.deepEqual(
      resumedWeights,
      weights(await store.get(expected.artifact.id)),
      'byte-identical weights',
    );
  });
});
