// Issue 4's service flow over HTTP: a model and a dataset uploaded to the real app, an L-LoRA
// fine-tune queued with POST /v1/finetunes and run by a real sandboxed worker, the adapter read
// back and downloaded, then an evaluation of it queued with POST /v1/evaluations.
import assert from 'node:assert/strict';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import supertest from 'supertest';
import { buildApp, type LorafuseApp } from '../../src/api/index.ts';
import { loadConfig } from '../../src/config.ts';
import {
  createApiRedis,
  type EvaluateJobResult,
  type FinetuneJobResult,
  JobService,
  type JobView,
} from '../../src/queue/index.ts';
import { ArtifactStore } from '../../src/store/index.ts';
import { startEvaluateWorker } from '../../workers/evaluate-worker.ts';
import { startFinetuneWorker } from '../../workers/finetune-worker.ts';
import type { QueueWorkerHandle } from '../../workers/queue-worker.ts';
import { startTestRedis, type TestRedis, tempDir, uniquePrefix } from '../helpers/redis.ts';
import { writeDatasetFile } from '../store/dataset-fixtures.ts';
import { waitFor } from './fixtures.ts';
import { MLP_FIXTURE } from './training-fixtures.ts';

process.env.LORAFUSE_BACKEND ??= 'wasm';

describe('fine-tune and evaluate over HTTP (buildApp + sandboxed workers)', () => {
  let server: TestRedis;
  const prefix = uniquePrefix('train-http');
  const data = tempDir('lorafuse-train-http');
  let app: LorafuseApp;
  let workers: QueueWorkerHandle[] = [];

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
    app = await buildApp({ config, redis, store, jobs: new JobService({ redis, prefix }), logger: false });
    const settings = { lockDurationMs: 30_000, stalledIntervalMs: 30_000, shutdownGraceMs: 10_000 };
    const options = { redisUrl: server.url, prefix, dataDir: data.dir, settings };
    workers = [startFinetuneWorker(options), startEvaluateWorker({ ...options, concurrency: 1 })];
  });
  after(async () => {
    await Promise.all(workers.map((worker) => worker.close(10_000)));
    await app.close();
    await server.stop();
    data.remove();
  });

  async function finished(id: string): Promise<JobView> {
    return waitFor(`job ${id} to finish`, async () => {
      const view = (await supertest(app.server).get(`/v1/jobs/${id}`).expect(200)).body as JobView;
      return ['completed', 'failed', 'cancelled'].includes(view.state) ? view : null;
    });
  }

  it('uploads, fine-tunes through the queue, downloads the adapter and evaluates it', async () => {
    const modelDir = path.join(MLP_FIXTURE, 'model');
    const model = (
      await supertest(app.server)
        .post('/v1/models')
        .attach('model.safetensors', path.join(modelDir, 'model.safetensors'), 'model.safetensors')
        .attach('config.json', path.join(modelDir, 'config.json'), 'config.json')
        .expect(201)
    ).body.id as string;
    const file = await writeDatasetFile(path.join(data.dir, 'upload.safetensors'), { n: 160 });
    const dataset = (
      await supertest(app.server)
        .post('/v1/datasets')
        .attach('dataset.safetensors', file, 'dataset.safetensors')
        .expect(201)
    ).body.id as string;

    const queued = await supertest(app.server)
      .post('/v1/finetunes')
      .send({
        model,
        dataset,
        mode: 'llora',
        rank: 2,
        steps: 40,
        batch_size: 32,
        learning_rate: 0.01,
        seed: 9,
      })
      .expect(202);
    // The dataset is an input of a pending (or running) job: it cannot be deleted meanwhile.
    await supertest(app.server).delete(`/v1/datasets/${dataset}`).expect(409);
    const job = await finished(queued.body.id);
    assert.equal(job.state, 'completed', JSON.stringify(job.error));
    const result = job.result as FinetuneJobResult;
    assert.equal(result.lossCurve.length, 40);
    assert.equal(typeof result.valAccuracy, 'number');

    const adapter = (await supertest(app.server).get(`/v1/adapters/${result.artifact.id}`).expect(200)).body;
    assert.equal(adapter.baseModel, model);
    assert.equal(adapter.rank, 2);
    assert.deepEqual(adapter.lineage.training.hyperparameters, {
      rank: 2,
      steps: 40,
      batch_size: 32,
      learning_rate: 0.01,
      checkpoint_every: 50,
    });
    const config = await supertest(app.server)
      .get(`/v1/adapters/${adapter.id}/files/adapter_config.json`)
      .expect(200);
    assert.equal(JSON.parse(config.text).r, 2);

    const evaluation = await supertest(app.server)
      .post('/v1/evaluations')
      .send({ model, adapters: [adapter.id], datasets: [dataset] })
      .expect(202);
    const evaluated = await finished(evaluation.body.id);
    assert.equal(evaluated.state, 'completed', JSON.stringify(evaluated.error));
    const [entry] = (evaluated.result as EvaluateJobResult).results;
    assert.deepEqual([entry.adapter, entry.dataset, entry.examples], [adapter.id, dataset, 160]);
    assert.ok(entry.accuracy >= 0 && entry.accuracy <= 1 && Number.isFinite(entry.loss));
  });
});
