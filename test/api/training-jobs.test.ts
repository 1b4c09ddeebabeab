// POST /v1/finetunes and POST /v1/evaluations: what is checked before a job is queued, and the
// payload a worker receives (no worker runs here; test/workers runs the jobs).
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Job } from 'bullmq';
import type { FinetuneJobPayload } from '../../src/queue/index.ts';
import { writeSafetensors } from '../../src/tensors/index.ts';
import { startTestRedis, type TestRedis } from '../helpers/redis.ts';
import { datasetMetadata, writeDatasetFile } from '../store/dataset-fixtures.ts';
import { writeModelFolder } from '../store/fixtures.ts';
import { filePart, multipart, startApi, type TestApi } from './harness.ts';

const PROBLEMS = 'https://lorafuse.dev/problems/';

describe('fine-tune and evaluation requests', () => {
  let server: TestRedis;
  let api: TestApi;
  let model: string;
  let bareModel: string;
  let dataset: string;
  let testSplit: string;
  let adapter: string;
  let head4: string;
  let head3: string;

  // One app and one set of artifacts for every test: each test counts the jobs it adds.
  before(async () => {
    server = await startTestRedis();
    api = await startApi(server.url);
    const uploadFolder = async (url: string, dir: string) => {
      const parts = [];
      for (const name of (await fs.readdir(dir)).filter((file) => file !== 'README.md'))
        parts.push(filePart(name, await fs.readFile(path.join(dir, name))));
      const response = await api.app.inject({ method: 'POST', url, ...multipart(parts) });
      assert.equal(response.statusCode, 201, response.body);
      return response.json().id as string;
    };
    const fixtures = path.join(import.meta.dirname, '..', 'fixtures', 'model', 'mlp');
    model = await uploadFolder('/v1/models', path.join(fixtures, 'model'));
    adapter = await uploadFolder('/v1/adapters', path.join(fixtures, 'adapter'));
    bareModel = await uploadFolder(
      '/v1/models',
      await writeModelFolder(path.join(api.workDir, 'bare'), { config: false }),
    );
    const datasets = path.join(api.workDir, 'datasets');
    await fs.mkdir(path.join(datasets, 'train'), { recursive: true });
    await fs.mkdir(path.join(datasets, 'test'), { recursive: true });
    await writeDatasetFile(path.join(datasets, 'train', 'dataset.safetensors'), { n: 20 });
    await writeDatasetFile(path.join(datasets, 'test', 'dataset.safetensors'), {
      n: 20,
      metadata: datasetMetadata({ split: 'test' }),
    });
    dataset = await uploadFolder('/v1/datasets', path.join(datasets, 'train'));
    testSplit = await uploadFolder('/v1/datasets', path.join(datasets, 'test'));
    // Stored heads over the MLP's 16 features: one with the dataset's 4 classes, one with 3.
    for (const classes of [4, 3]) {
      const dir = path.join(api.workDir, `head-${classes}`);
      await fs.mkdir(dir, { recursive: true });
      await writeSafetensors(path.join(dir, 'head.safetensors'), [
        {
          name: 'weight',
          dtype: 'F32',
          shape: [classes, 16],
          data: new Float32Array(classes * 16).fill(0.01),
        },
      ]);
      const id = await uploadFolder('/v1/heads', dir);
      if (classes === 4) head4 = id;
      else head3 = id;
    }
  });
  after(async () => {
    await api.close();
    await server.stop();
  });
  const jobCount = async () => (await api.jobs.list({ limit: 1000 })).items.length;

  const post = (url: string, body: unknown, headers: Record<string, string> = {}) =>
    api.app.inject({ method: 'POST', url, payload: body as object, headers });

  it('queues a fine-tune with the seed chosen, checkpoints on by default, and its inputs pinned', async () => {
    const response = await post('/v1/finetunes', { model, dataset, mode: 'llora', rank: 4, steps: 30 });
    assert.equal(response.statusCode, 202, response.body);
    const job = response.json();
    assert.equal(job.type, 'finetune');
    assert.equal(job.state, 'queued');
    assert.equal(response.headers.location, `/v1/jobs/${job.id}`);
    assert.equal(typeof job.recipe.seed, 'number');
    assert.deepEqual(
      { ...job.recipe, seed: 0 },
      { model, dataset, mode: 'llora', rank: 4, steps: 30, seed: 0 },
    );
    const queued = await Job.fromId(api.jobs.queue('finetune'), job.id);
    const payload = queued?.data as FinetuneJobPayload;
    assert.deepEqual(payload.hyperparameters, { rank: 4, steps: 30, checkpoint_every: 50 });
    assert.deepEqual(payload.inputs, [model, dataset]);
    assert.equal(payload.seed, job.recipe.seed);
    assert.ok((await api.jobs.jobsUsingArtifact(dataset)).includes(job.id));
  });

  it('answers the same Idempotency-Key and body with the same job (200)', async () => {
    const body = { model, dataset, mode: 'lora', seed: 3 };
    const first = await post('/v1/finetunes', body, { 'idempotency-key': 'ft-1' });
    const again = await post('/v1/finetunes', body, { 'idempotency-key': 'ft-1' });
    assert.equal(first.statusCode, 202);
    assert.equal(again.statusCode, 200);
    assert.equal(again.json().id, first.json().id);
    const other = await post('/v1/finetunes', { ...body, seed: 4 }, { 'idempotency-key': 'ft-1' });
    assert.equal(other.statusCode, 409);
  });

  it('queues a fine-tune through a stored head, pinned as an input', async () => {
    const response = await post('/v1/finetunes', {
      model,
      dataset,
      mode: 'lora',
      head: head4,
      train_head: true,
    });
    assert.equal(response.statusCode, 202, response.body);
    const queued = await Job.fromId(api.jobs.queue('finetune'), response.json().id);
    const payload = queued?.data as FinetuneJobPayload;
    assert.equal(payload.hyperparameters.head, head4);
    assert.equal(payload.hyperparameters.train_head, true);
    assert.deepEqual(payload.inputs, [model, dataset, head4]);
  });

  const finetuneRejections: Array<{
    what: string;
    body: () => Record<string, unknown>;
    status: number;
    type: string;
    match?: RegExp;
  }> = [
    {
      what: 'an unknown model id',
      body: () => ({ model: 'mdl_00000000000000000000000000', dataset, mode: 'lora' }),
      status: 422,
      type: 'unknown-artifact',
      match: /model: mdl_0+ is not a stored model/,
    },
    {
      what: 'a dataset id in the model place',
      body: () => ({ model: dataset, dataset, mode: 'lora' }),
      status: 422,
      type: 'unknown-artifact',
    },
    {
      what: 'an unknown dataset id',
      body: () => ({ model, dataset: 'dst_00000000000000000000000000', mode: 'lora' }),
      status: 422,
      type: 'unknown-artifact',
      match: /dataset: dst_0+ is not a stored dataset/,
    },
    {
      what: 'a model without config.json',
      body: () => ({ model: bareModel, dataset, mode: 'full' }),
      status: 422,
      type: 'model-not-runnable',
      match: /a bare checkpoint can be merged but not run/,
    },
    {
      what: 'a test split',
      body: () => ({ model, dataset: testSplit, mode: 'lora' }),
      status: 422,
      type: 'invalid-finetune',
      match: /test split/,
    },
    {
      what: 'a rank for full fine-tuning',
      body: () => ({ model, dataset, mode: 'full', rank: 4 }),
      status: 422,
      type: 'invalid-finetune',
      match: /rank applies to lora and llora only/,
    },
    {
      what: 'more warmup than steps',
      body: () => ({ model, dataset, mode: 'lora', steps: 10, warmup_steps: 11 }),
      status: 422,
      type: 'invalid-finetune',
      match: /warmup_steps \(11\) is more than steps \(10\)/,
    },
    {
      what: 'an unknown mode',
      body: () => ({ model, dataset, mode: 'qlora' }),
      status: 400,
      type: 'invalid-request',
    },
    {
      what: 'rank 0',
      body: () => ({ model, dataset, mode: 'lora', rank: 0 }),
      status: 400,
      type: 'invalid-request',
    },
    {
      what: 'a negative learning rate',
      body: () => ({ model, dataset, mode: 'lora', learning_rate: -1 }),
      status: 400,
      type: 'invalid-request',
    },
    {
      what: 'a fractional batch size',
      body: () => ({ model, dataset, mode: 'lora', batch_size: 2.5 }),
      status: 400,
      type: 'invalid-request',
    },
    {
      what: 'a validation fraction over one half',
      body: () => ({ model, dataset, mode: 'lora', validation_fraction: 0.9 }),
      status: 400,
      type: 'invalid-request',
    },
    {
      what: 'an unknown field',
      body: () => ({ model, dataset, mode: 'lora', epochs: 3 }),
      status: 400,
      type: 'invalid-request',
    },
    {
      what: 'a head with other classes than the dataset',
      body: () => ({ model, dataset, mode: 'lora', head: head3 }),
      status: 422,
      type: 'invalid-finetune',
      match: /has 3 classes but dst_\w+ has 4 \(class_names\)/,
    },
    {
      what: 'an unknown head id',
      body: () => ({ model, dataset, mode: 'lora', head: 'hed_00000000000000000000000000' }),
      status: 422,
      type: 'unknown-artifact',
      match: /head: hed_0+ is not a stored head/,
    },
    { what: 'no dataset', body: () => ({ model, mode: 'lora' }), status: 400, type: 'invalid-request' },
  ];

  for (const rejection of finetuneRejections) {
    it(`refuses a fine-tune with ${rejection.what} (${rejection.status}) and queues nothing`, async () => {
      const jobsBefore = await jobCount();
      const response = await post('/v1/finetunes', rejection.body());
      assert.equal(response.statusCode, rejection.status, response.body);
      assert.equal(response.json().type, PROBLEMS + rejection.type);
      if (rejection.match) assert.match(response.json().detail, rejection.match);
      assert.equal(await jobCount(), jobsBefore);
    });
  }

  it('queues an evaluation of the model with each adapter over each dataset', async () => {
    const response = await post('/v1/evaluations', {
      model,
      adapters: [adapter],
      datasets: [dataset, testSplit],
    });
    assert.equal(response.statusCode, 202, response.body);
    const job = response.json();
    assert.equal(job.type, 'evaluate');
    const queued = await Job.fromId(api.jobs.queue('evaluate'), job.id);
    assert.deepEqual(queued?.data.inputs, [model, adapter, dataset, testSplit]);
  });

  const evaluationRejections: Array<{
    what: string;
    body: () => Record<string, unknown>;
    status: number;
    type: string;
    match?: RegExp;
  }> = [
    {
      what: 'an unknown adapter',
      body: () => ({ model, adapters: ['adp_00000000000000000000000000'], datasets: [dataset] }),
      status: 422,
      type: 'unknown-artifact',
      match: /adapters\[0\]: adp_0+ is not a stored adapter/,
    },
    {
      what: 'a model id in the datasets',
      body: () => ({ model, datasets: [dataset, model] }),
      status: 422,
      type: 'unknown-artifact',
      match: /datasets\[1\]/,
    },
    {
      what: 'a bare checkpoint',
      body: () => ({ model: bareModel, datasets: [dataset] }),
      status: 422,
      type: 'model-not-runnable',
    },
    { what: 'no datasets', body: () => ({ model, datasets: [] }), status: 400, type: 'invalid-request' },
    {
      what: 'a dataset twice',
      body: () => ({ model, datasets: [dataset, dataset] }),
      status: 400,
      type: 'invalid-request',
    },
  ];

  for (const rejection of evaluationRejections) {
    it(`refuses an evaluation with ${rejection.what} (${rejection.status}) and queues nothing`, async () => {
      const jobsBefore = await jobCount();
      const response = await post('/v1/evaluations', rejection.body());
      assert.equal(response.statusCode, rejection.status, response.body);
      assert.equal(response.json().type, PROBLEMS + rejection.type);
      if (rejection.match) assert.match(response.json().detail, rejection.match);
      assert.equal(await jobCount(), jobsBefore);
    });
  }
});
