// The finetune and evaluate queues' workers (sandboxed processors, real Redis, the real model
// runtime on the tiny MLP fixture): a fine-tune to completion, a full fine-tune, a cancel mid-
// training, bad input failing at once, and an evaluation that agrees with `lorafuse evaluate`.
import assert from 'node:assert/strict';
import { existsSync, mkdirSync } from 'node:fs';
import path from 'node:path';
import { after, afterEach, before, beforeEach, describe, it } from 'node:test';
import { runModelCommand } from '../../src/cli/model-commands.ts';
import type {
  EvaluateJobResult,
  FinetuneJobPayload,
  FinetuneJobResult,
  JobService,
} from '../../src/queue/index.ts';
import type { ArtifactStore } from '../../src/store/index.ts';
import { startEvaluateWorker } from '../../workers/evaluate-worker.ts';
import { startFinetuneWorker } from '../../workers/finetune-worker.ts';
import { finetuneJobDir } from '../../workers/finetune/run-finetune-job.ts';
import type { QueueWorkerHandle } from '../../workers/queue-worker.ts';
import { startTestRedis, type TestRedis } from '../helpers/redis.ts';
import { leftoverWorkDirs, waitFor, waitForState, type JobWorld, openJobWorld } from './fixtures.ts';
import { ingestMlpAdapter, ingestMlpDataset, ingestMlpModel, MLP_FIXTURE } from './training-fixtures.ts';

// The processors (forked children) inherit this: wasm is the backend the model tests use.
process.env.LORAFUSE_BACKEND ??= 'wasm';

const SETTINGS = { lockDurationMs: 30_000, stalledIntervalMs: 30_000, shutdownGraceMs: 10_000 };

describe('finetune and evaluate workers (sandboxed, real Redis, MLP fixture)', () => {
  let server: TestRedis;
  let world: JobWorld;
  let prefix: string;
  let data: { dir: string; remove(): void };
  let store: ArtifactStore;
  let jobs: JobService;
  let workers: QueueWorkerHandle[];
  let model: string;
  let dataset: { id: string; file: string };

  before(async () => {
    server = await startTestRedis();
  });
  after(async () => {
    await server.stop();
  });
  beforeEach(async () => {
    world = await openJobWorld(server.url, 'train');
    ({ prefix, data, store, jobs } = world);
    model = await ingestMlpModel(store, data.dir);
    dataset = await ingestMlpDataset(store, data.dir, { n: 200 });
    workers = [];
  });
  afterEach(async () => {
    await Promise.all(workers.map((worker) => worker.close(10_000)));
    await world.close();
  });

  function startWorkers(): void {
    const options = { redisUrl: server.url, prefix, dataDir: data.dir, settings: SETTINGS };
    workers.push(startFinetuneWorker(options), startEvaluateWorker({ ...options, concurrency: 1 }));
  }

  function finetunePayload(
    mode: FinetuneJobPayload['mode'],
    hyperparameters: FinetuneJobPayload['hyperparameters'],
  ): FinetuneJobPayload {
    return {
      recipe: { model, dataset: dataset.id, mode, ...hyperparameters, seed: 5 },
      model,
      dataset: dataset.id,
      mode,
      hyperparameters,
      seed: 5,
      inputs: [model, dataset.id],
    };
  }

  it('fine-tunes an L-LoRA adapter to completion: stored with its base and lineage, loss curve in the result', async () => {
    startWorkers();
    const hyperparameters = {
      rank: 4,
      steps: 60,
      batch_size: 32,
      learning_rate: 0.01,
      eval_every: 20,
      checkpoint_every: 20,
    };
    const { job: queued } = await jobs.submit('finetune', finetunePayload('llora', hyperparameters));
    const done = await waitForState(jobs, queued.id, ['completed', 'failed']);
    assert.equal(done.state, 'completed', JSON.stringify(done.error));
    const result = done.result as FinetuneJobResult;
    assert.equal(result.artifact.kind, 'adapter');
    assert.equal(result.steps, 60);
    assert.equal(result.resumedFromStep, null);
    assert.deepEqual(
      result.lossCurve.map((point) => point.step),
      Array.from({ length: 60 }, (_, i) => i + 1),
    );
    const head = result.lossCurve.slice(0, 5).reduce((sum, point) => sum + point.loss, 0) / 5;
    const tail = result.lossCurve.slice(-5).reduce((sum, point) => sum + point.loss, 0) / 5;
    assert.ok(tail < head, `loss ${head} -> ${tail}`);
    assert.deepEqual(
      result.validation.map((point) => point.step),
      [20, 40, 60],
    );
    assert.equal(result.valAccuracy, result.validation[2].accuracy);
    assert.deepEqual(done.progress, {
      phase: 'done',
      step: 60,
      totalSteps: 60,
      loss: result.finalLoss,
      valAccuracy: result.valAccuracy,
    });

    const record = await store.get(result.artifact.id);
    assert.ok(record);
    assert.equal(record.baseModel, model);
    assert.equal(record.rank, 4);
    assert.deepEqual(
      record.files.map((file) => file.name),
      ['adapter_config.json', 'adapter_model.safetensors', 'lorafuse.json', 'lorafuse_init.safetensors'],
    );
    assert.deepEqual(record.lineage?.parents, [
      { kind: 'model', id: model },
      { kind: 'dataset', id: dataset.id },
    ]);
    assert.equal(record.lineage?.jobId, queued.id);
    assert.deepEqual(record.lineage?.training, {
      base: model,
      dataset: dataset.id,
      mode: 'llora',
      hyperparameters,
      seed: 5,
      steps: 60,
      // Data-parallel over LORAFUSE_TRAIN_RUNTIMES (2 by default) on wasm; cpu runs one.
      runtimes: (process.env.LORAFUSE_BACKEND ?? 'wasm') === 'wasm' ? 2 : 1,
      // The tfjs backend the run used, so results (a study's) can say what they were measured on.
      backend: process.env.LORAFUSE_BACKEND ?? 'wasm',
      metrics: {
        finalLoss: result.finalLoss,
        valAccuracy: result.valAccuracy,
        valLoss: result.validation[2].loss,
      },
    });
    const extras = JSON.parse(
      (await import('node:fs')).readFileSync(store.filePaths(record)['lorafuse.json'], 'utf8'),
    );
    assert.deepEqual(extras.lineage, { baseModel: model, dataset: dataset.id }, 'ids, not server paths');
    assert.equal(existsSync(finetuneJobDir(data.dir, queued.id)), false, 'the job folder is removed');
  });

  it('full fine-tuning stores a model (config.json, weights, lorafuse.json)', async () => {
    startWorkers();
    const { job: queued } = await jobs.submit(
      'finetune',
      finetunePayload('full', { steps: 10, batch_size: 32, learning_rate: 0.001 }),
    );
    const done = await waitForState(jobs, queued.id, ['completed', 'failed']);
    assert.equal(done.state, 'completed', JSON.stringify(done.error));
    const result = done.result as FinetuneJobResult;
    assert.equal(result.artifact.kind, 'model');
    const record = await store.get(result.artifact.id);
    assert.deepEqual(
      record?.files.map((file) => file.name),
      ['config.json', 'lorafuse.json', 'model.safetensors'],
    );
    assert.equal(record?.baseModel, undefined);
  });

  it('cancels mid-training: the job reads cancelled, nothing is stored, the job folder is removed', async () => {
    startWorkers();
    const adaptersBefore = await store.count('adapter');
    const { job: queued } = await jobs.submit(
      'finetune',
      finetunePayload('lora', {
        rank: 4,
        steps: 100_000,
        batch_size: 16,
        checkpoint_every: 20,
        eval_every: 100_000,
      }),
    );
    await waitFor('the job to be training', async () => {
      const view = await jobs.get(queued.id);
      return view?.state === 'active' && (view.progress?.step as number) > 20;
    });
    assert.ok(existsSync(path.join(finetuneJobDir(data.dir, queued.id), 'checkpoints')));
    const asked = await jobs.cancel(queued.id);
    assert.equal(asked.cancelRequested, true);
    const done = await waitForState(jobs, queued.id, ['cancelled', 'failed', 'completed']);
    assert.equal(done.state, 'cancelled', JSON.stringify(done.error));
    assert.ok((done.progress?.step as number) < 100_000);
    assert.equal(await store.count('adapter'), adaptersBefore);
    assert.equal(existsSync(finetuneJobDir(data.dir, queued.id)), false);
  });

  it('fails at once, without retries, on input the runtime refuses (an unknown target module)', async () => {
    startWorkers();
    const { job: queued } = await jobs.submit(
      'finetune',
      finetunePayload('lora', { steps: 5, target_modules: ['no_such_layer'] }),
    );
    const done = await waitForState(jobs, queued.id, ['completed', 'failed']);
    assert.equal(done.state, 'failed');
    assert.equal(done.error?.type, 'invalid_input');
    assert.match(done.error?.message ?? '', /no_such_layer/);
    assert.equal(done.attempts, 1);
    assert.equal(existsSync(finetuneJobDir(data.dir, queued.id)), false);
  });

  it('sweeps, at start, the folder of a fine-tune that ended without its processor', async () => {
    const gone = finetuneJobDir(data.dir, 'job_00000000-0000-0000-0000-000000000000');
    mkdirSync(path.join(gone, 'checkpoints'), { recursive: true });
    startWorkers();
    await waitFor('the orphan folder to be removed', async () => !existsSync(gone));
  });

  it('evaluates the model alone and with an adapter on two datasets, as `lorafuse evaluate` does', async () => {
    startWorkers();
    const adapter = await ingestMlpAdapter(store, data.dir);
    const test = await ingestMlpDataset(store, data.dir, { n: 50, seed: 3, split: 'test' });
    const inputs = [model, adapter, dataset.id, test.id];
    const { job: withAdapter } = await jobs.submit('evaluate', {
      recipe: {},
      model,
      adapters: [adapter],
      datasets: [dataset.id, test.id],
      inputs,
    });
    const { job: alone } = await jobs.submit('evaluate', {
      recipe: {},
      model,
      adapters: [],
      datasets: [test.id],
      inputs: [model, test.id],
    });
    const done = await waitForState(jobs, withAdapter.id, ['completed', 'failed']);
    assert.equal(done.state, 'completed', JSON.stringify(done.error));
    const result = done.result as EvaluateJobResult;
    assert.equal(result.model, model);
    assert.deepEqual(
      result.results.map((entry) => [entry.adapter, entry.dataset, entry.split, entry.examples]),
      [
        [adapter, dataset.id, 'train', 200],
        [adapter, test.id, 'test', 50],
      ],
    );
    assert.deepEqual(done.progress, { phase: 'done', done: 2, total: 2 });
    const baseOnly = await waitForState(jobs, alone.id, ['completed', 'failed']);
    assert.equal(baseOnly.state, 'completed', JSON.stringify(baseOnly.error));
    const baseEntry = (baseOnly.result as EvaluateJobResult).results[0];
    assert.equal(baseEntry.adapter, null);

    // The same numbers from the CLI's evaluate over the fixture folders.
    const cli = async (args: string[]) => {
      let stdout = '';
      const code = await runModelCommand('evaluate', args, {
        stdout: (text) => {
          stdout += text;
        },
        stderr: () => undefined,
      });
      assert.equal(code, 0);
      return JSON.parse(stdout) as { accuracy: number; loss: number };
    };
    const modelDir = path.join(MLP_FIXTURE, 'model');
    const expectedWith = await cli([
      '--model',
      modelDir,
      '--adapter',
      path.join(MLP_FIXTURE, 'adapter'),
      '--dataset',
      test.file,
    ]);
    assert.equal(result.results[1].accuracy, expectedWith.accuracy);
    assert.ok(Math.abs(result.results[1].loss - expectedWith.loss) < 1e-6);
    const expectedAlone = await cli(['--model', modelDir, '--dataset', test.file]);
    assert.equal(baseEntry.accuracy, expectedAlone.accuracy);
    assert.ok(Math.abs(baseEntry.loss - expectedAlone.loss) < 1e-6);
    assert.notEqual(baseEntry.loss, result.results[1].loss, 'the adapter changes the model');
    assert.deepEqual(leftoverWorkDirs(data.dir), []);
  });
});
