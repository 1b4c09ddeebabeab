// Every JSON the service reads has a size and depth limit, and a request has caps on what it asks
// for: each is a 422 before anything is stored or queued, never a 500 (an adapter_config.json
// nested 5,000 deep was a 500 RangeError).
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { startTestRedis, type TestRedis } from '../helpers/redis.ts';
import { datasetMetadata, writeDatasetFile } from '../store/dataset-fixtures.ts';
import { writeAdapterFolder, writeModelFolder } from '../store/fixtures.ts';
import { filePart, multipart, startApi, type TestApi } from './harness.ts';

const PROBLEMS = 'https://lorafuse.dev/problems/';
const deepObject = (n: number) => `${'{"a":'.repeat(n)}1${'}'.repeat(n)}`;
const deepArray = (n: number) => `${'['.repeat(n)}1${']'.repeat(n)}`;

describe('input limits', () => {
  let server: TestRedis;
  let api: TestApi;

  before(async () => {
    server = await startTestRedis();
    api = await startApi(server.url, {}, { maxRecipeModels: 3, maxEvaluationTasks: 1 });
  });
  after(async () => {
    await api.close();
    await server.stop();
  });

  async function upload(url: string, parts: Array<[string, Buffer]>) {
    return api.app.inject({
      method: 'POST',
      url,
      ...multipart(parts.map(([name, data]) => filePart(name, data))),
    });
  }

  async function expectRefused(
    response: Awaited<ReturnType<typeof upload>>,
    type: string,
    before: Awaited<ReturnType<TestApi['snapshot']>>,
  ) {
    assert.equal(response.statusCode, 422, response.body);
    assert.equal(response.json().type, PROBLEMS + type);
    assert.deepEqual(await api.snapshot(), before, 'nothing stored');
    return response.json();
  }

  it('adapter_config.json and config.json nested 5,000 deep: 422 invalid-json, nothing stored', async () => {
    const dir = await writeAdapterFolder(path.join(api.workDir, 'adapter'));
    const weights = await fs.readFile(path.join(dir, 'adapter_model.safetensors'));
    const config = { peft_type: 'LORA', r: 2, lora_alpha: 4, target_modules: ['q_proj'] };
    const snapshot = await api.snapshot();
    for (const extra of [deepObject(5000), deepArray(5000), deepArray(65)]) {
      const text = `${JSON.stringify(config).slice(0, -1)},"x":${extra}}`;
      const problem = await expectRefused(
        await upload('/v1/adapters', [
          ['adapter_model.safetensors', weights],
          ['adapter_config.json', Buffer.from(text)],
        ]),
        'invalid-json',
        snapshot,
      );
      assert.equal(problem.file, 'adapter_config.json');
      assert.match(problem.detail, /nested deeper than 64/);
    }
    // Brackets inside strings are not nesting; 64 levels (with the config object) is within the limit.
    const fine = `${JSON.stringify({ ...config, note: '[[[[{{{{' }).slice(0, -1)},"x":${deepArray(63)}}`;
    const accepted = await upload('/v1/adapters', [
      ['adapter_model.safetensors', weights],
      ['adapter_config.json', Buffer.from(fine)],
    ]);
    assert.equal(accepted.statusCode, 201, accepted.body);

    const model = await writeModelFolder(path.join(api.workDir, 'model'), { config: false });
    const modelWeights = await fs.readFile(path.join(model, 'model.safetensors'));
    const before = await api.snapshot();
    const problem = await expectRefused(
      await upload('/v1/models', [
        ['model.safetensors', modelWeights],
        ['config.json', Buffer.from(`{"x":${deepObject(5000)}}`)],
      ]),
      'invalid-json',
      before,
    );
    assert.equal(problem.file, 'config.json');
  });

  it('dataset class_names nested deep in the safetensors metadata: 422 invalid-dataset', async () => {
    const file = await writeDatasetFile(path.join(api.workDir, 'deep-dataset.safetensors'), {
      n: 8,
      metadata: datasetMetadata({ class_names: deepArray(5000) }),
    });
    const before = await api.snapshot();
    const problem = await expectRefused(
      await upload('/v1/datasets', [['dataset.safetensors', await fs.readFile(file)]]),
      'invalid-dataset',
      before,
    );
    assert.equal(problem.field, 'class_names');
  });

  it('recipes: nested too deep or with more models than LORAFUSE_MAX_RECIPE_MODELS: 422, nothing queued', async () => {
    const post = (payload: string) =>
      api.app.inject({
        method: 'POST',
        url: '/v1/merges',
        headers: { 'content-type': 'application/json' },
        payload,
      });
    const deep = await post(
      `{"merge_method":"linear","models":[{"model":"x","parameters":{"weight":1}}],"seed":${deepObject(5000)}}`,
    );
    assert.equal(deep.statusCode, 422, deep.body);
    assert.equal(deep.json().code, 'too_deep');
    const models = Array.from({ length: 4 }, (_, i) => ({ model: `m${i}`, parameters: { weight: 1 } }));
    const many = await post(JSON.stringify({ merge_method: 'linear', models }));
    assert.equal(many.statusCode, 422, many.body);
    assert.equal(many.json().type, `${PROBLEMS}invalid-recipe`);
    assert.equal(many.json().code, 'too_many_models');
    assert.equal(many.json().path, 'models');
    assert.equal((await api.jobs.list({ limit: 10 })).items.length, 0);
  });

  it('an evaluation over more (adapter, dataset) pairs than LORAFUSE_MAX_EVALUATION_TASKS: 422', async () => {
    const fixtures = path.join(import.meta.dirname, '..', 'fixtures', 'model', 'mlp', 'model');
    const parts: Array<[string, Buffer]> = [];
    for (const name of (await fs.readdir(fixtures)).filter((file) => file !== 'README.md'))
      parts.push([name, await fs.readFile(path.join(fixtures, name))]);
    const model = (await upload('/v1/models', parts)).json().id;
    const datasets: string[] = [];
    for (const seed of [1, 2]) {
      const file = await writeDatasetFile(path.join(api.workDir, `ds${seed}.safetensors`), { n: 8, seed });
      const response = await upload('/v1/datasets', [['dataset.safetensors', await fs.readFile(file)]]);
      assert.equal(response.statusCode, 201, response.body);
      datasets.push(response.json().id);
    }
    const post = (body: unknown) =>
      api.app.inject({ method: 'POST', url: '/v1/evaluations', payload: body as object });
    const over = await post({ model, datasets });
    assert.equal(over.statusCode, 422, over.body);
    assert.equal(over.json().type, `${PROBLEMS}limit-exceeded`);
    assert.deepEqual([over.json().limit, over.json().value], [1, 2]);
    assert.equal((await post({ model, datasets: [datasets[0]] })).statusCode, 202);
  });
});
