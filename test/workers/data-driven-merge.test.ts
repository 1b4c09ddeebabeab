// Data-driven merges through the service: GET /v1/methods declares them; POST /v1/merges refuses them
// without evaluation.tasks (and with a wrong task count, an unknown dataset, a parameter out of range)
// before queueing; with tasks, a sandboxed merge worker runs RegMean and LoraHub on the tasks' validation
// datasets and stores the merged artifact, with what the method learned in the job result.
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import path from 'node:path';
import { after, afterEach, before, beforeEach, describe, it } from 'node:test';
import { writeDataset } from '../../src/model/train/dataset.ts';
import type { JobView, MergeJobResult } from '../../src/queue/index.ts';
import { type MergeWorkerHandle, startMergeWorker } from '../../workers/merge-worker.ts';
import { filePart, multipart, startApi, type TestApi } from '../api/harness.ts';
import { blockTask, MLP_BASE, perturbedModels } from '../eval/data-driven/task-case.ts';
import { removeScratchDirs } from '../model/helpers.ts';
import { startTestRedis, type TestRedis } from '../helpers/redis.ts';
import { leftoverWorkDirs, waitFor } from './fixtures.ts';

describe('data-driven merges over the API and a merge worker', () => {
  let server: TestRedis;
  let api: TestApi;
  let worker: MergeWorkerHandle | undefined;
  let ids: { base: string; models: string[]; validation: string[]; test: string[] };

  before(async () => {
    server = await startTestRedis();
  });
  after(async () => {
    await server.stop();
    removeScratchDirs();
  });
  beforeEach(async () => {
    api = await startApi(server.url);
    worker = undefined;
    const uploadModel = async (dir: string) => {
      const parts = await Promise.all(
        ['config.json', 'model.safetensors'].map(async (f) =>
          filePart(f, await fs.readFile(path.join(dir, f))),
        ),
      );
      const response = await api.app.inject({ method: 'POST', url: '/v1/models', ...multipart(parts) });
      assert.equal(response.statusCode, 201, response.body);
      return response.json().id as string;
    };
    const uploadDataset = async (index: number, split: string, seed: number) => {
      const file = path.join(api.workDir, `task-${index}-${split}.safetensors`);
      await writeDataset(file, blockTask(index, 2, 48, split, seed));
      const response = await api.app.inject({
        method: 'POST',
        url: '/v1/datasets',
        ...multipart([filePart('dataset.safetensors', await fs.readFile(file))]),
      });
      assert.equal(response.statusCode, 201, response.body);
      return response.json().id as string;
    };
    const models = [];
    for (const dir of await perturbedModels(2, 0.2)) models.push(await uploadModel(dir));
    ids = {
      base: await uploadModel(MLP_BASE),
      models,
      validation: [await uploadDataset(0, 'validation', 2), await uploadDataset(1, 'validation', 2)],
      test: [await uploadDataset(0, 'test', 3), await uploadDataset(1, 'test', 3)],
    };
  });
  afterEach(async () => {
    await worker?.close(10_000);
    await api.close();
  });

  const tasks = () =>
    ids.validation.map((validation, i) => ({ name: `task-${i}`, validation, test: ids.test[i] }));

  async function expectRefused(body: Record<string, unknown>, type: string) {
    const before = (await api.jobs.list({ limit: 100 })).items.length;
    const response = await api.app.inject({ method: 'POST', url: '/v1/merges', payload: body });
    assert.equal(response.statusCode, 422, response.body);
    const problem = response.json();
    assert.equal(problem.type, `https://lorafuse.dev/problems/${type}`, response.body);
    assert.equal((await api.jobs.list({ limit: 100 })).items.length, before, 'nothing was queued');
    return problem;
  }

  it('GET /v1/methods declares the data-driven methods, their data and parameter ranges', async () => {
    const response = await api.app.inject({ method: 'GET', url: '/v1/methods' });
    assert.equal(response.statusCode, 200);
    interface Described {
      name: string;
      kind: string;
      data?: { split: string; labels: string; inputs: string[]; adapterSpace?: string };
      parameters: Array<{ name: string; default?: unknown; range?: { min?: number; max?: number } }>;
    }
    const methods = response.json().items as Described[];
    const byName = new Map(methods.map((m) => [m.name, m]));
    for (const name of ['lorahub', 'adamerging', 'fisher', 'regmean']) {
      assert.equal(byName.get(name)?.kind, 'data-driven', name);
      assert.equal(byName.get(name)?.data?.split, 'validation');
    }
    assert.equal(byName.get('lorahub')!.data!.labels, 'labeled');
    assert.equal(byName.get('adamerging')!.data!.labels, 'unlabeled');
    assert.deepEqual(byName.get('lorahub')!.data!.inputs, ['models', 'adapters']);
    assert.equal(byName.get('lorahub')!.data!.adapterSpace, 'parameters');
    assert.equal(byName.get('regmean')!.data!.adapterSpace, 'delta');
    const budget = byName.get('lorahub')!.parameters.find((p) => p.name === 'max_evaluations')!;
    assert.deepEqual([budget.default, budget.range?.min, budget.range?.max], [40, 2, 10000]);
    assert.equal(byName.get('task_arithmetic')!.data, undefined);
  });

  it('refuses before queueing: no tasks, wrong task count, unknown dataset, out of range, unused base', async () => {
    const lorahub = {
      merge_method: 'lorahub',
      base_model: ids.base,
      models: ids.models.map((model) => ({ model })),
    };
    const noTasks = await expectRefused(lorahub, 'invalid-merge');
    assert.equal(noTasks.code, 'needs_task_data');
    assert.match(noTasks.detail, /evaluation\.tasks/);
    const oneTask = await expectRefused(
      { ...lorahub, evaluation: { tasks: tasks().slice(0, 1) } },
      'invalid-evaluation',
    );
    assert.equal(oneTask.path, 'evaluation.tasks');
    assert.match(oneTask.detail, /1 tasks for 2 recipe inputs/);
    const missing = 'dst_00000000000000000000000000';
    const unknown = await expectRefused(
      { ...lorahub, evaluation: { tasks: [{ ...tasks()[0], validation: missing }, tasks()[1]] } },
      'unknown-artifact',
    );
    assert.deepEqual(unknown.artifacts, [missing]);
    const range = await expectRefused(
      { ...lorahub, parameters: { max_evaluations: 1 }, evaluation: { tasks: tasks() } },
      'invalid-merge',
    );
    assert.equal(range.parameter, 'max_evaluations');
    const base = await expectRefused(
      { ...lorahub, merge_method: 'regmean', evaluation: { tasks: tasks() } },
      'invalid-merge',
    );
    assert.equal(base.code, 'unused_base_model');
    const onTest = await expectRefused(
      { ...lorahub, evaluation: { tasks: [{ ...tasks()[0], validation: ids.test[0] }, tasks()[1]] } },
      'invalid-evaluation',
    );
    assert.match(onTest.detail, /test split: never select on test/);
    const shape = await expectRefused(
      { ...lorahub, evaluation: { tasks: [{ name: 'x' }, { name: 'y' }] } },
      'invalid-evaluation',
    );
    assert.match(shape.path, /^evaluation\.tasks\[0\]/);
  });

  it('runs RegMean and LoraHub in a sandboxed worker on the validation datasets and stores the merge', async () => {
    const submit = async (body: Record<string, unknown>) => {
      const response = await api.app.inject({ method: 'POST', url: '/v1/merges', payload: body });
      assert.equal(response.statusCode, 202, response.body);
      return response.json().id as string;
    };
    const regmeanJob = await submit({
      merge_method: 'regmean',
      models: ids.models.map((model) => ({ model })),
      evaluation: { tasks: tasks() },
    });
    const lorahubJob = await submit({
      merge_method: 'lorahub',
      base_model: ids.base,
      models: ids.models.map((model) => ({ model })),
      parameters: { max_evaluations: 8, examples: 16 },
      seed: 3,
      evaluation: { tasks: tasks() },
    });
    // The datasets a queued data-driven merge reads cannot be deleted under it.
    const refused = await api.app.inject({ method: 'DELETE', url: `/v1/datasets/${ids.validation[0]}` });
    assert.equal(refused.statusCode, 409, refused.body);

    worker = startMergeWorker({
      redisUrl: server.url,
      prefix: api.config.queuePrefix,
      dataDir: api.dataDir,
      concurrency: 1,
      settings: { lockDurationMs: 60_000, stalledIntervalMs: 60_000, shutdownGraceMs: 10_000 },
    });
    const finished = async (id: string) =>
      waitFor<JobView>(`job ${id} to finish`, async () => {
        const view = (await api.app.inject({ method: 'GET', url: `/v1/jobs/${id}` })).json() as JobView;
        return view.state === 'completed' || view.state === 'failed' ? view : null;
      });
    const regmean = await finished(regmeanJob);
    assert.equal(regmean.state, 'completed', JSON.stringify(regmean.error));
    const regmeanResult = regmean.result as MergeJobResult;
    assert.equal(regmeanResult.artifact.kind, 'model');
    assert.equal(regmeanResult.dataDriven?.method, 'regmean');
    assert.deepEqual(regmeanResult.dataDriven?.examples, [48, 48]);
    const record = (
      await api.app.inject({ method: 'GET', url: `/v1/models/${regmeanResult.artifact.id}` })
    ).json();
    const parents = (record.lineage?.parents ?? record.parents ?? []) as Array<{ id: string }>;
    assert.ok(
      ids.validation.every((id) => JSON.stringify(parents).includes(id)),
      `the validation datasets are parents: ${JSON.stringify(record)}`,
    );

    const lorahub = await finished(lorahubJob);
    assert.equal(lorahub.state, 'completed', JSON.stringify(lorahub.error));
    const lorahubResult = lorahub.result as MergeJobResult;
    assert.equal(lorahubResult.dataDriven?.coefficients?.length, 2);
    assert.equal(lorahubResult.dataDriven?.objective?.length, 8);
    assert.deepEqual(leftoverWorkDirs(api.dataDir), []);
  });

  it('a validation dataset the model cannot read fails the job at once as invalid input', async () => {
    const file = path.join(api.workDir, 'narrow.safetensors');
    const narrow = blockTask(0, 2, 16, 'validation', 5);
    const pixels = narrow.inputs.get('pixel_values')!;
    // 16 values per example where the MLP reads 48
    narrow.inputs.set('pixel_values', {
      ...pixels,
      shape: [16, 1, 4, 4],
      data: (pixels.data as Float32Array).slice(0, 16 * 16),
    });
    await writeDataset(file, narrow);
    const upload = await api.app.inject({
      method: 'POST',
      url: '/v1/datasets',
      ...multipart([filePart('dataset.safetensors', await fs.readFile(file))]),
    });
    assert.equal(upload.statusCode, 201, upload.body);
    const response = await api.app.inject({
      method: 'POST',
      url: '/v1/merges',
      payload: {
        merge_method: 'regmean',
        models: ids.models.map((model) => ({ model })),
        evaluation: { tasks: [{ ...tasks()[0], validation: upload.json().id }, tasks()[1]] },
      },
    });
    assert.equal(response.statusCode, 202, response.body);
    worker = startMergeWorker({
      redisUrl: server.url,
      prefix: api.config.queuePrefix,
      dataDir: api.dataDir,
      concurrency: 1,
      settings: { lockDurationMs: 60_000, stalledIntervalMs: 60_000, shutdownGraceMs: 10_000 },
    });
    const id = response.json().id as string;
    const failed = await waitFor<JobView>('the job to fail', async () => {
      const view = (await api.app.inject({ method: 'GET', url: `/v1/jobs/${id}` })).json() as JobView;
      return view.state === 'failed' || view.state === 'completed' ? view : null;
    });
    assert.equal(failed.state, 'failed');
    assert.equal(failed.attempts, 1, 'not retried');
    assert.match(JSON.stringify(failed.error), /invalid_input/);
    assert.match(JSON.stringify(failed.error), /regmean/);
    assert.deepEqual(leftoverWorkDirs(api.dataDir), []);
  });
});
