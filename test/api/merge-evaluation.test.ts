// POST /v1/merges with `evaluation` and `search`, and POST /v1/heads: what is resolved and checked before
// anything is queued (task defaults, ids and kinds, splits, grid parameters), and how a search is queued (one
// child job per grid point, visible like any job). The jobs' running is tested in test/workers.
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import path from 'node:path';
import { after, afterEach, before, beforeEach, describe, it } from 'node:test';
import type { MergeJobPayload } from '../../src/queue/index.ts';
import { writeSafetensors } from '../../src/tensors/index.ts';
import { uploadDataset, uploadMlp } from '../helpers/mlp-uploads.ts';
import { startTestRedis, type TestRedis } from '../helpers/redis.ts';
import { datasetMetadata, writeDatasetFile } from '../store/dataset-fixtures.ts';
import { filePart, multipart, startApi, type TestApi } from './harness.ts';

describe('merge evaluation and search requests', () => {
  let server: TestRedis;
  let api: TestApi;
  let model: string;
  let adapters: string[];
  let datasets: { validation: string; test: string; other: string };

  before(async () => {
    server = await startTestRedis();
  });
  after(async () => {
    await server.stop();
  });
  beforeEach(async () => {
    api = await startApi(server.url);
    ({ model, adapters } = await uploadMlp(api));
    const dataset = (split: string, seed: number) => uploadDataset(api, split, seed, 16);
    datasets = {
      validation: await dataset('validation', 1),
      test: await dataset('test', 2),
      other: await dataset('test', 3),
    };
  });
  afterEach(async () => {
    await api.close();
  });

  function recipe(extra: Record<string, unknown> = {}): Record<string, unknown> {
    return {
      merge_method: 'task_arithmetic',
      base_model: model,
      models: adapters.map((adapter) => ({ adapter })),
      parameters: { lambda: 0.5, weight: 1 },
      ...extra,
    };
  }
  const tasks = () => [
    { name: 'a', validation: datasets.validation, test: datasets.test },
    { name: 'b', validation: datasets.validation, test: datasets.other },
  ];
  const postMerge = (body: unknown) =>
    api.app.inject({ method: 'POST', url: '/v1/merges', payload: body as object });

  async function expectProblem(body: unknown, type: string, detail: RegExp) {
    const before = (await api.jobs.list({ limit: 100 })).items.length;
    const response = await postMerge(body);
    assert.equal(response.statusCode, 422, response.body);
    assert.equal(response.json().type, `https://lorafuse.dev/problems/${type}`);
    assert.match(response.json().detail, detail);
    assert.equal((await api.jobs.list({ limit: 100 })).items.length, before, 'nothing was queued');
  }

  it('resolves task defaults: the input adapter is the reference and its saved classifier the head', async () => {
    const response = await postMerge(recipe({ evaluation: { tasks: tasks() } }));
    assert.equal(response.statusCode, 202, response.body);
    const job = await api.jobs.queue('merge').getJob(response.json().id);
    const payload = job!.data as MergeJobPayload;
    assert.deepEqual(payload.evaluation, {
      baseModel: model,
      tasks: [
        {
          name: 'a',
          validation: datasets.validation,
          test: datasets.test,
          head: `adapter:${adapters[0]}`,
          reference: adapters[0],
        },
        {
          name: 'b',
          validation: datasets.validation,
          test: datasets.other,
          head: `adapter:${adapters[1]}`,
          reference: adapters[1],
        },
      ],
      // Two tasks over adapters with a base: the report draws ξ of the first two on the bounded default grid.
      disentanglement: { tasks: [0, 1], grid: [-2, -1.5, -1, -0.5, 0, 0.5, 1, 1.5, 2], maxExamples: 64 },
    });
    assert.equal(payload.recipe.evaluation, undefined, 'the recipe stays a mergekit recipe');
    // The datasets are inputs of the pending job: they cannot be deleted meanwhile.
    const deleted = await api.app.inject({ method: 'DELETE', url: `/v1/datasets/${datasets.test}` });
    assert.equal(deleted.statusCode, 409);
    // No report before the job completed.
    const report = await api.app.inject({ method: 'GET', url: `/v1/jobs/${response.json().id}/report` });
    assert.equal(report.statusCode, 404);
    assert.match(report.json().type, /report-not-found$/);
  });

  it('takes a stored head and another reference', async () => {
    const weight = Float32Array.from({ length: 4 * 16 }, (_, i) => i / 64);
    const headFile = path.join(api.workDir, 'head.safetensors');
    await writeSafetensors(headFile, [{ name: 'weight', dtype: 'F32', shape: [4, 16], data: weight }]);
    const uploaded = await api.app.inject({
      method: 'POST',
      url: '/v1/heads',
      ...multipart([filePart('head.safetensors', await fs.readFile(headFile))]),
    });
    assert.equal(uploaded.statusCode, 201, uploaded.body);
    const head = uploaded.json();
    assert.match(head.id, /^hed_/);
    assert.deepEqual(head.head, { classes: 4, features: 16, bias: false });
    const [a, b] = tasks();
    const response = await postMerge(
      recipe({ evaluation: { tasks: [{ ...a, head: head.id, reference: adapters[1] }, b] } }),
    );
    assert.equal(response.statusCode, 202, response.body);
    const payload = (await api.jobs.queue('merge').getJob(response.json().id))!.data as MergeJobPayload;
    assert.equal(payload.evaluation!.tasks[0].head, `head:${head.id}`);
    assert.equal(payload.evaluation!.tasks[0].reference, adapters[1]);
  });

  it("refuses a head whose class count is not the dataset's, naming the task, before queueing", async () => {
    const fiveClasses = path.join(api.workDir, 'five-classes.safetensors');
    await writeDatasetFile(fiveClasses, {
      n: 16,
      seed: 9,
      metadata: datasetMetadata({
        split: 'validation',
        class_names: JSON.stringify(['n', 'e', 's', 'w', 'x']),
      }),
    });
    const uploadedSet = await api.app.inject({
      method: 'POST',
      url: '/v1/datasets',
      ...multipart([filePart('dataset.safetensors', await fs.readFile(fiveClasses))]),
    });
    assert.equal(uploadedSet.statusCode, 201, uploadedSet.body);
    // The adapters' own heads answer 4 classes: a 5-class validation set does not fit task b.
    await expectProblem(
      recipe({ evaluation: { tasks: [tasks()[0], { ...tasks()[1], validation: uploadedSet.json().id }] } }),
      'head-class-mismatch',
      /^task b: the head adapter:adp_\w+ answers 4 classes, but dataset dst_\w+ names 5/,
    );
    // A stored 3-class head on 4-class datasets: refused for merges and for single evaluations alike.
    const headFile = path.join(api.workDir, 'three.safetensors');
    await writeSafetensors(headFile, [
      { name: 'weight', dtype: 'F32', shape: [3, 16], data: new Float32Array(48) },
    ]);
    const uploaded = await api.app.inject({
      method: 'POST',
      url: '/v1/heads',
      ...multipart([filePart('head.safetensors', await fs.readFile(headFile))]),
    });
    assert.equal(uploaded.statusCode, 201, uploaded.body);
    const three = uploaded.json().id as string;
    await expectProblem(
      recipe({ evaluation: { tasks: [{ ...tasks()[0], head: three }, tasks()[1]] } }),
      'head-class-mismatch',
      /^task a: the head head:hed_\w+ answers 3 classes/,
    );
    const evaluation = await api.app.inject({
      method: 'POST',
      url: '/v1/evaluations',
      payload: { model, datasets: [{ dataset: datasets.test, head: three }] },
    });
    assert.equal(evaluation.statusCode, 422, evaluation.body);
    assert.match(evaluation.json().type, /head-class-mismatch$/);
    assert.equal(evaluation.json().field, 'datasets[0].head');
    assert.equal(evaluation.json().headClasses, 3);
    assert.equal(evaluation.json().datasetClasses, 4);
  });

  it('refuses a head file that is not weight [classes, features] (+ bias)', async () => {
    const file = path.join(api.workDir, 'bad-head.safetensors');
    await writeSafetensors(file, [
      { name: 'weight', dtype: 'F32', shape: [4, 16], data: new Float32Array(64) },
      { name: 'bias', dtype: 'F32', shape: [3], data: new Float32Array(3) },
    ]);
    const response = await api.app.inject({
      method: 'POST',
      url: '/v1/heads',
      ...multipart([filePart('head.safetensors', await fs.readFile(file))]),
    });
    assert.equal(response.statusCode, 422, response.body);
    assert.match(response.json().type, /invalid-head$/);
    assert.equal(response.json().tensor, 'bias');
  });

  it('refuses evaluations it could not run, before queueing', async () => {
    await expectProblem(
      recipe({ evaluation: { tasks: tasks().slice(1) } }),
      'invalid-evaluation',
      /task i belongs to input i/,
    );
    await expectProblem(
      recipe({ evaluation: { tasks: [{ ...tasks()[0], validation: datasets.test }, tasks()[1]] } }),
      'invalid-evaluation',
      /never select on test/,
    );
    await expectProblem(
      recipe({
        evaluation: { tasks: [{ ...tasks()[0], test: 'dst_00000000000000000000000000' }, tasks()[1]] },
      }),
      'unknown-artifact',
      /evaluation\.tasks\[0\]\.test/,
    );
    await expectProblem(
      recipe({ evaluation: { tasks: [tasks()[0], { ...tasks()[1], name: 'a' }] } }),
      'invalid-evaluation',
      /names two tasks/,
    );
    await expectProblem(
      recipe({ search: { grid: { lambda: [0.5, 1] } } }),
      'invalid-evaluation',
      /needs evaluation/,
    );
    await expectProblem(
      recipe({ evaluation: { tasks: tasks() }, search: { grid: { gamma: [0.5] } } }),
      'invalid-evaluation',
      /task_arithmetic has no parameter gamma/,
    );
    await expectProblem(
      recipe({
        evaluation: { tasks: tasks() },
        search: {
          grid: {
            lambda: Array.from({ length: 9 }, (_, i) => i),
            weight: Array.from({ length: 8 }, (_, i) => i + 1),
          },
        },
      }),
      'invalid-evaluation',
      /72 points; at most 64/,
    );
  });

  it('queues a search as a flow: one child job per grid point, each with its point in its recipe', async () => {
    const response = await postMerge(
      recipe({
        evaluation: { tasks: tasks() },
        search: { grid: { lambda: [0.5, 1], weight: [0.5, 1, 2] }, keep: 'all' },
      }),
    );
    assert.equal(response.statusCode, 202, response.body);
    const parent = response.json();
    const payload = (await api.jobs.queue('merge').getJob(parent.id))!.data as MergeJobPayload;
    assert.deepEqual(payload.search, { grid: { lambda: [0.5, 1], weight: [0.5, 1, 2] }, keep: 'all' });
    const expected = [
      [0.5, 0.5],
      [0.5, 1],
      [0.5, 2],
      [1, 0.5],
      [1, 1],
      [1, 2],
    ];
    for (const [i, [lambda, weight]] of expected.entries()) {
      const child = await api.app.inject({ method: 'GET', url: `/v1/jobs/${parent.id}-p${i}` });
      assert.equal(child.statusCode, 200, child.body);
      assert.equal(child.json().state, 'queued');
      assert.deepEqual(child.json().recipe.parameters, { lambda, weight });
      const data = (await api.jobs.queue('merge').getJob(`${parent.id}-p${i}`))!.data as MergeJobPayload;
      assert.deepEqual(data.point, { index: i, params: { lambda, weight } });
    }
    const listed = (await api.jobs.list({ limit: 100 })).items.map((job) => job.id);
    assert.equal(listed[0], parent.id, 'the parent lists above its points');
    assert.equal(listed.length, 7);
    // Cancelling the queued search takes its points off the queue with it.
    const cancelled = await api.app.inject({ method: 'DELETE', url: `/v1/jobs/${parent.id}` });
    assert.equal(cancelled.statusCode, 200, cancelled.body);
    assert.equal(cancelled.json().state, 'cancelled');
    assert.equal(await api.jobs.queue('merge').getJob(`${parent.id}-p0`), undefined);
  });
});
