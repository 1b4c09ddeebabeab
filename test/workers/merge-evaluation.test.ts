// Issue 8's "done when" over HTTP: the service's own fine-tune jobs make two small LoRA adapters (with their task
// heads) on MNIST-derived tasks (parity, magnitude); a merge with `evaluation` and `search` runs as a BullMQ flow
// (one child job per grid point), returns the chosen artifact and a report. The test recomputes every number of
// the report from its recorded predictions and the datasets' labels, checks the selection was made on validation,
// and that a second merge over the same inputs reads the references from the evaluation cache.
import assert from 'node:assert/strict';
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import supertest from 'supertest';
import { buildApp, type LorafuseApp } from '../../src/api/index.ts';
import { loadConfig } from '../../src/config.ts';
import { buildMnistDataset, type MnistTask } from '../../src/eval/datasets/mnist.ts';
import type { Report } from '../../src/eval/report/report-types.ts';
import { readDataset, selectRows, writeDataset } from '../../src/model/train/dataset.ts';
import {
  createApiRedis,
  type EvaluateJobResult,
  JobService,
  type JobView,
  type MergeJobResult,
} from '../../src/queue/index.ts';
import { ArtifactStore, DATASET_FILE } from '../../src/store/index.ts';
import { seededUniform, writeSafetensors } from '../../src/tensors/index.ts';
import { startEvaluateWorker } from '../../workers/evaluate-worker.ts';
import { startFinetuneWorker } from '../../workers/finetune-worker.ts';
import { startMergeWorker } from '../../workers/merge-worker.ts';
import type { QueueWorkerHandle } from '../../workers/queue-worker.ts';
import { startTestRedis, type TestRedis, tempDir, uniquePrefix } from '../helpers/redis.ts';
import { waitFor } from './fixtures.ts';

process.env.LORAFUSE_BACKEND ??= 'wasm';

const HIDDEN = 16;

/** A tiny MLP over 28×28 digits (784 → 16 → 2), seeded: the shared body both tasks fine-tune. */
async function writeMnistMlp(dir: string): Promise<void> {
  mkdirSync(dir, { recursive: true });
  const next = seededUniform(5);
  const init = (n: number, fanIn: number) =>
    Float32Array.from({ length: n }, () => (next() * 2 - 1) / Math.sqrt(fanIn));
  await writeSafetensors(path.join(dir, 'model.safetensors'), [
    { name: 'layers.0.weight', dtype: 'F32', shape: [HIDDEN, 784], data: init(HIDDEN * 784, 784) },
    { name: 'layers.0.bias', dtype: 'F32', shape: [HIDDEN], data: new Float32Array(HIDDEN) },
    { name: 'classifier.weight', dtype: 'F32', shape: [2, HIDDEN], data: init(2 * HIDDEN, HIDDEN) },
    { name: 'classifier.bias', dtype: 'F32', shape: [2], data: new Float32Array(2) },
  ]);
  writeFileSync(
    path.join(dir, 'config.json'),
    JSON.stringify({
      model_type: 'mlp',
      input_size: 784,
      hidden_sizes: [HIDDEN],
      num_labels: 2,
      hidden_act: 'relu',
    }),
  );
}

describe('merge with evaluation and search over fine-tuned MNIST adapters (HTTP + sandboxed workers)', () => {
  let server: TestRedis;
  const prefix = uniquePrefix('merge-eval');
  const data = tempDir('lorafuse-merge-eval');
  let app: LorafuseApp;
  let workers: QueueWorkerHandle[] = [];
  const http = () => supertest(app.server);

  before(async () => {
    server = await startTestRedis();
    const config = loadConfig({
      LORAFUSE_DATA_DIR: data.dir,
      LORAFUSE_QUEUE_PREFIX: prefix,
      REDIS_URL: server.url,
      // Not about access: the API runs with auth off (test/api/auth.test.ts covers it).
      LORAFUSE_AUTH: 'false',
    });
    const redis = createApiRedis(server.url);
    const store = new ArtifactStore({ redis, dataDir: data.dir, prefix });
    await store.init();
    app = await buildApp({ config, redis, store, jobs: new JobService({ redis, prefix }), logger: false });
    const settings = { lockDurationMs: 60_000, stalledIntervalMs: 60_000, shutdownGraceMs: 10_000 };
    const options = { redisUrl: server.url, prefix, dataDir: data.dir, settings };
    workers = [
      startFinetuneWorker(options),
      startMergeWorker({ ...options, concurrency: 1 }),
      startEvaluateWorker({ ...options, concurrency: 1 }),
    ];
  });
  after(async () => {
    await Promise.all(workers.map((worker) => worker.close(10_000)));
    await app.close();
    await server.stop();
    data.remove();
  });

  async function finished(id: string, timeoutMs = 240_000): Promise<JobView> {
    return waitFor(
      `job ${id} to finish`,
      async () => {
        const view = (await http().get(`/v1/jobs/${id}`).expect(200)).body as JobView;
        return ['completed', 'failed', 'cancelled'].includes(view.state) ? view : null;
      },
      timeoutMs,
    );
  }

  async function uploadDataset(name: string, dataset: Parameters<typeof writeDataset>[1]): Promise<string> {
    const file = path.join(data.dir, `${name}.safetensors`);
    await writeDataset(file, dataset);
    return (await http().post('/v1/datasets').attach(DATASET_FILE, file, DATASET_FILE).expect(201)).body.id;
  }

  /** train (400 rows), validation (the next 100 rows of the train digits), test (100 held-out digits). */
  async function mnistTask(task: MnistTask) {
    const pool = buildMnistDataset({ task, split: 'train', perDigit: 50 });
    const range = (from: number, to: number) => Array.from({ length: to - from }, (_, i) => from + i);
    return {
      train: await uploadDataset(`${task}-train`, selectRows(pool, range(0, 400))),
      validation: await uploadDataset(`${task}-validation`, {
        ...selectRows(pool, range(400, 500)),
        split: 'validation',
      }),
      test: await uploadDataset(`${task}-test`, buildMnistDataset({ task, split: 'test', perDigit: 10 })),
    };
  }

  it('fine-tunes, searches λ on validation, reports the chosen merge, and caches the references', async () => {
    const modelDir = path.join(data.dir, 'mnist-mlp');
    await writeMnistMlp(modelDir);
    const model = (
      await http()
        .post('/v1/models')
        .attach('model.safetensors', path.join(modelDir, 'model.safetensors'), 'model.safetensors')
        .attach('config.json', path.join(modelDir, 'config.json'), 'config.json')
        .expect(201)
    ).body.id as string;
    const tasks = { parity: await mnistTask('parity'), magnitude: await mnistTask('magnitude') };

    // The service's own fine-tune jobs make the task adapters (LoRA + the trained head, shared A₀ seed).
    const adapters: Record<string, string> = {};
    for (const [name, task] of Object.entries(tasks)) {
      const queued = await http()
        .post('/v1/finetunes')
        .send({
          model,
          dataset: task.train,
          mode: 'lora',
          rank: 4,
          steps: 30,
          batch_size: 32,
          learning_rate: 0.02,
          seed: 3,
        })
        .expect(202);
      const job = await finished(queued.body.id);
      assert.equal(job.state, 'completed', JSON.stringify(job.error));
      adapters[name] = (job.result as { artifact: { id: string } }).artifact.id;
    }

    const lambdas = [0.4, 1, 1.6];
    const body = {
      merge_method: 'task_arithmetic',
      base_model: model,
      models: [{ adapter: adapters.parity }, { adapter: adapters.magnitude }],
      parameters: { weight: 1 },
      seed: 1,
      evaluation: {
        tasks: Object.entries(tasks).map(([name, t]) => ({ name, validation: t.validation, test: t.test })),
      },
      search: { grid: { lambda: lambdas } },
    };
    const queued = await http().post('/v1/merges').send(body).expect(202);
    const job = await finished(queued.body.id);
    assert.equal(job.state, 'completed', JSON.stringify(job.error));
    const result = job.result as MergeJobResult;

    // Every grid point is a child job of its own, visible like any job.
    for (const i of lambdas.keys()) {
      const child = (await http().get(`/v1/jobs/${queued.body.id}-p${i}`).expect(200)).body as JobView;
      assert.equal(child.state, 'completed');
      assert.equal((child.recipe as { parameters: { lambda: number } }).parameters.lambda, lambdas[i]);
    }

    const report = (await http().get(`/v1/jobs/${queued.body.id}/report`).expect(200)).body as Report;
    const html = (await http().get(`/v1/jobs/${queued.body.id}/report.html`).expect(200)).text;
    assert.match(html, /^<!doctype html>/);
    assert.ok(html.includes(report.answer.summary.replace(/&/g, '&amp;')));
    assert.equal(report.kind, 'search');
    assert.equal(
      result.report?.id,
      (await http().get(`/v1/reports/${result.report?.id}`).expect(200)).body.id,
    );

    // Recompute every evaluation's accuracy from its predictions and the dataset's labels.
    const labels = new Map<string, Int32Array>();
    for (const t of Object.values(tasks)) {
      for (const id of [t.validation, t.test]) {
        const record = await app.store.get(id);
        labels.set(id, (await readDataset(app.store.filePaths(record!)[DATASET_FILE])).labels);
      }
    }
    const accuracy = new Map<string, number>();
    for (const e of report.evaluations) {
      const truth = labels.get(e.dataset)!;
      assert.equal(e.predictions.length, truth.length);
      const correct = e.predictions.filter((p, i) => p === truth[i]).length;
      assert.ok(Math.abs(correct / truth.length - e.accuracy) < 1e-12, e.key);
      accuracy.set(e.key, correct / truth.length);
    }
    const chosen = report.search!.points[report.search!.chosen];
    assert.equal(report.answer.artifact, result.artifact.id);
    assert.deepEqual(chosen.params, result.chosen?.params);

    // Per task: merged and reference through the task's own head (the adapter's trained classifier).
    const key = (artifact: string, head: string, dataset: string) => `${artifact}|${head}|${dataset}`;
    const normalized: number[] = [];
    for (const [name, t] of Object.entries(tasks)) {
      const row = report.tasks.find((r) => r.task === name)!;
      const head = `adapter:${adapters[name]}`;
      assert.equal(row.head, head);
      const merged = accuracy.get(key(result.artifact.id, head, t.test))!;
      const reference = accuracy.get(key(adapters[name], head, t.test))!;
      assert.ok(row.base, 'the base model read through the task head is reported');
      assert.equal(row.accuracy, merged);
      assert.equal(row.referenceAccuracy, reference);
      assert.ok(Math.abs(row.normalizedAccuracy! - merged / reference) < 1e-12);
      normalized.push(merged / reference);
      // Fine-tuning learned something: the reference beats chance on its binary task.
      assert.ok(reference > 0.6, `${name} reference accuracy ${reference}`);
    }
    assert.ok(Math.abs(report.averages.normalizedAccuracy! - (normalized[0] + normalized[1]) / 2) < 1e-12);

    // Selection on validation only: recompute each point's average normalized validation accuracy.
    const scores = report.search!.points.map((point) => {
      const childResult = point.params.lambda;
      assert.ok(lambdas.includes(childResult));
      return point.validation.averageNormalizedAccuracy!;
    });
    for (const [i, point] of report.search!.points.entries()) {
      const childJob = (await http().get(`/v1/jobs/${point.job}`).expect(200)).body as JobView;
      const artifact = (childJob.result as MergeJobResult).artifact.id;
      const perTask = Object.entries(tasks).map(([name, t]) => {
        const head = `adapter:${adapters[name]}`;
        return (
          accuracy.get(key(artifact, head, t.validation))! /
          accuracy.get(key(adapters[name], head, t.validation))!
        );
      });
      assert.ok(Math.abs(scores[i] - (perTask[0] + perTask[1]) / 2) < 1e-12, `point ${i}`);
      // keep: best (the default): only the chosen point's artifact stays.
      const stored = await app.store.get(artifact);
      assert.equal(stored !== null, i === report.search!.chosen, `point ${i}'s artifact kept?`);
      // No test evaluation of any other point was recorded (never select on test).
      if (i !== report.search!.chosen) {
        assert.ok(!report.evaluations.some((e) => e.artifact === artifact && e.split === 'test'));
      }
    }
    assert.equal(Math.max(...scores), scores[report.search!.chosen]);

    // The merged adapter keeps each task's head under the task's name.
    const merged = await app.store.get(result.artifact.id);
    assert.ok(merged!.files.some((f) => f.name === 'lorafuse_heads.safetensors'));

    // POST /v1/evaluations reads a dataset through a chosen head the same way: the base model through the parity
    // adapter's head gives the report's base row.
    const evaluation = await http()
      .post('/v1/evaluations')
      .send({
        model,
        datasets: [{ dataset: tasks.parity.test, head: adapters.parity }, tasks.magnitude.test],
      })
      .expect(202);
    const evaluated = await finished(evaluation.body.id);
    assert.equal(evaluated.state, 'completed', JSON.stringify(evaluated.error));
    const [throughHead, ownClassifier] = (evaluated.result as EvaluateJobResult).results;
    assert.equal(throughHead.head, `adapter:${adapters.parity}`);
    assert.equal(ownClassifier.head, null);
    const parityRow = report.tasks.find((r) => r.task === 'parity')!;
    assert.equal(throughHead.accuracy, accuracy.get(parityRow.base!.test!));

    // A plain evaluated merge over the same inputs reads every reference and base evaluation from the cache.
    const again = await http()
      .post('/v1/merges')
      .send({ ...body, search: undefined, parameters: { weight: 1, lambda: chosen.params.lambda } })
      .expect(202);
    const second = await finished(again.body.id);
    assert.equal(second.state, 'completed', JSON.stringify(second.error));
    const secondReport = (await http().get(`/v1/jobs/${again.body.id}/report`).expect(200)).body as Report;
    const notMerged = secondReport.evaluations.filter(
      (e) => e.artifact !== (second.result as MergeJobResult).artifact.id,
    );
    assert.equal(notMerged.length, 8, 'references and base rows, 2 tasks × 2 splits each');
    assert.equal((second.result as MergeJobResult).cacheHits, notMerged.length);
    for (const e of notMerged)
      assert.deepEqual(e.predictions, report.evaluations.find((r) => r.key === e.key)?.predictions);
  });
});
