import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';
import { after, afterEach, before, beforeEach, describe, it } from 'node:test';
import { startTestRedis, type TestRedis } from '../helpers/redis.ts';
import {
  type DatasetTensor,
  datasetMetadata,
  MLP_CLASSES,
  mlpDatasetTensors,
  writeDatasetFile,
} from '../store/dataset-fixtures.ts';
import { filePart, multipart, type Part, startApi, type TestApi } from './harness.ts';

const PROBLEM = 'application/problem+json; charset=utf-8';

describe('datasets API', () => {
  let server: TestRedis;
  let api: TestApi;

  before(async () => {
    server = await startTestRedis();
  });
  after(async () => {
    await server.stop();
  });
  beforeEach(async () => {
    api = await startApi(server.url);
  });
  afterEach(async () => {
    await api.close();
  });

  async function datasetBytes(
    options: { tensors?: DatasetTensor[]; metadata?: Record<string, string> } = {},
  ): Promise<Buffer> {
    const file = path.join(api.workDir, `dataset-${Math.random().toString(16).slice(2)}.safetensors`);
    await writeDatasetFile(file, { n: 12, ...options });
    return fs.readFile(file);
  }

  async function upload(parts: Part[]) {
    return api.app.inject({ method: 'POST', url: '/v1/datasets', ...multipart(parts) });
  }

  it('stores a dataset with its examples, split, task, classes and inputs; lists, gets and downloads it', async () => {
    const bytes = await datasetBytes();
    const response = await upload([filePart('dataset.safetensors', bytes)]);
    assert.equal(response.statusCode, 201, response.body);
    const record = response.json();
    assert.match(record.id, /^dst_/);
    assert.equal(response.headers.location, `/v1/datasets/${record.id}`);
    assert.equal(record.kind, 'dataset');
    assert.equal(record.examples, 12);
    assert.equal(record.split, 'train');
    assert.equal(record.task, 'compass');
    assert.deepEqual(record.classes, MLP_CLASSES);
    assert.deepEqual(record.inputs, [{ name: 'pixel_values', dtype: 'F32', shape: [12, 3, 4, 4] }]);
    assert.equal(record.tensorCount, 2);
    assert.deepEqual(record.dtypes, ['F32', 'I64']);
    assert.deepEqual(record.files, [
      {
        name: 'dataset.safetensors',
        size: bytes.length,
        sha256: createHash('sha256').update(bytes).digest('hex'),
      },
    ]);

    const listed = await api.app.inject({ method: 'GET', url: '/v1/datasets?limit=1' });
    assert.equal(listed.statusCode, 200);
    assert.deepEqual(listed.json(), { items: [record], nextCursor: null });
    const got = await api.app.inject({ method: 'GET', url: `/v1/datasets/${record.id}` });
    assert.deepEqual(got.json(), record);

    const file = `/v1/datasets/${record.id}/files/dataset.safetensors`;
    const whole = await api.app.inject({ method: 'GET', url: file });
    assert.equal(whole.statusCode, 200);
    assert.deepEqual(whole.rawPayload, bytes);
    assert.equal(whole.headers.etag, `"${record.files[0].sha256}"`);
    const part = await api.app.inject({ method: 'GET', url: file, headers: { range: 'bytes=0-7' } });
    assert.equal(part.statusCode, 206);
    assert.deepEqual(part.rawPayload, bytes.subarray(0, 8));
    const cached = await api.app.inject({
      method: 'GET',
      url: file,
      headers: { 'if-none-match': whole.headers.etag as string },
    });
    assert.equal(cached.statusCode, 304);
  });

  it('pages the listing newest first, and a model id is not a dataset', async () => {
    const ids: string[] = [];
    for (const seed of [1, 2, 3]) {
      const response = await upload([
        filePart('dataset.safetensors', await datasetBytes({ tensors: mlpDatasetTensors(4, seed) })),
      ]);
      ids.push(response.json().id);
    }
    const first = (await api.app.inject({ method: 'GET', url: '/v1/datasets?limit=2' })).json();
    assert.deepEqual(
      first.items.map((item: { id: string }) => item.id),
      [ids[2], ids[1]],
    );
    const second = (
      await api.app.inject({ method: 'GET', url: `/v1/datasets?limit=2&cursor=${first.nextCursor}` })
    ).json();
    assert.deepEqual(
      second.items.map((item: { id: string }) => item.id),
      [ids[0]],
    );
    const wrongKind = await api.app.inject({
      method: 'GET',
      url: '/v1/datasets/mdl_00000000000000000000000000',
    });
    assert.equal(wrongKind.statusCode, 404);
  });

  it('deletes a dataset and its blob, and refuses while a queued job reads it (409)', async () => {
    const record = (await upload([filePart('dataset.safetensors', await datasetBytes())])).json();
    const job = await api.jobs.submit('evaluate', { inputs: [record.id] });
    const refused = await api.app.inject({ method: 'DELETE', url: `/v1/datasets/${record.id}` });
    assert.equal(refused.statusCode, 409);
    assert.equal(refused.json().type, 'https://lorafuse.dev/problems/artifact-in-use');
    assert.deepEqual(refused.json().jobs, [job.job.id]);
    await api.jobs.cancel(job.job.id);
    const deleted = await api.app.inject({ method: 'DELETE', url: `/v1/datasets/${record.id}` });
    assert.equal(deleted.statusCode, 204);
    assert.deepEqual((await api.snapshot()).blobs, []);
    assert.equal((await api.app.inject({ method: 'GET', url: `/v1/datasets/${record.id}` })).statusCode, 404);
  });

  const n = 6;
  const pixels = (rows = n) => ({
    name: 'pixel_values',
    dtype: 'F32' as const,
    shape: [rows, 3, 4, 4],
    data: new Float32Array(rows * 48),
  });
  const labels = (values: number[] = [0, 1, 2, 3, 0, 1]) => ({
    name: 'labels',
    dtype: 'I64' as const,
    shape: [values.length],
    data: BigInt64Array.from(values, BigInt),
  });
  const ids = (rows = n, width = 5) => ({
    name: 'input_ids',
    dtype: 'I64' as const,
    shape: [rows, width],
    data: new BigInt64Array(rows * width),
  });

  const rejections: Array<{
    what: string;
    tensors?: () => DatasetTensor[];
    metadata?: Record<string, string>;
    tensor?: string;
    field?: string;
    pattern: RegExp;
  }> = [
    { what: 'no labels', tensors: () => [pixels()], tensor: 'labels', pattern: /needs labels/ },
    {
      what: 'labels of the wrong dtype',
      tensors: () => [pixels(), { name: 'labels', dtype: 'I32', shape: [n], data: new Int32Array(n) }],
      tensor: 'labels',
      pattern: /labels must be I64 of rank 1, got I32/,
    },
    {
      what: 'an unknown tensor name',
      tensors: () => [
        pixels(),
        labels(),
        { name: 'images', dtype: 'F32', shape: [n, 2], data: new Float32Array(2 * n) },
      ],
      tensor: 'images',
      pattern: /images is not a dataset tensor/,
    },
    {
      what: 'pixel_values of the wrong rank',
      tensors: () => [
        { name: 'pixel_values', dtype: 'F32', shape: [n, 48], data: new Float32Array(48 * n) },
        labels(),
      ],
      tensor: 'pixel_values',
      pattern: /pixel_values must be F32 of rank 4/,
    },
    {
      what: 'input_ids as floats',
      tensors: () => [
        { name: 'input_ids', dtype: 'F32', shape: [n, 5], data: new Float32Array(5 * n) },
        labels(),
      ],
      tensor: 'input_ids',
      pattern: /input_ids must be I64/,
    },
    {
      what: 'no model input',
      tensors: () => [labels()],
      tensor: 'pixel_values',
      pattern: /needs pixel_values F32 \[N,C,H,W\] or input_ids I64/,
    },
    {
      what: 'a different N in an input',
      tensors: () => [pixels(n + 1), labels()],
      tensor: 'pixel_values',
      pattern: /pixel_values has 7 examples, labels has 6/,
    },
    {
      what: 'an attention_mask that does not match input_ids',
      tensors: () => [ids(), { ...ids(n, 4), name: 'attention_mask' }, labels()],
      tensor: 'attention_mask',
      pattern: /attention_mask \[6, 4\] must have the shape of input_ids/,
    },
    {
      what: 'a label outside the classes',
      tensors: () => [pixels(), labels([0, 1, 2, 3, 4, 0])],
      tensor: 'labels',
      pattern: /labels\[4\] is 4, outside \[0, 4\)/,
    },
    {
      what: 'a negative label',
      tensors: () => [pixels(), labels([0, -1, 2, 3, 1, 0])],
      tensor: 'labels',
      pattern: /labels\[1\] is -1/,
    },
    {
      what: 'an unknown split',
      metadata: datasetMetadata({ split: 'dev' }),
      field: 'split',
      pattern: /split must be one of train, validation, test/,
    },
    {
      what: 'no split',
      metadata: datasetMetadata({ split: undefined }),
      field: 'split',
      pattern: /needs a non-empty "split"/,
    },
    {
      what: 'no task',
      metadata: datasetMetadata({ task: undefined }),
      field: 'task',
      pattern: /needs a non-empty "task"/,
    },
    {
      what: 'no class names',
      metadata: datasetMetadata({ class_names: undefined }),
      field: 'class_names',
      pattern: /"class_names"/,
    },
    {
      what: 'class names that are not JSON',
      metadata: datasetMetadata({ class_names: 'north,east' }),
      field: 'class_names',
      pattern: /JSON array of strings/,
    },
    {
      what: 'class names that are not strings',
      metadata: datasetMetadata({ class_names: '[1, 2]' }),
      field: 'class_names',
      pattern: /non-empty strings/,
    },
    {
      what: 'a class name twice',
      metadata: datasetMetadata({ class_names: '["a", "b", "a", "c"]' }),
      field: 'class_names',
      pattern: /holds a name twice/,
    },
  ];

  for (const rejection of rejections) {
    it(`refuses ${rejection.what} with a 422 naming it, and stores nothing`, async () => {
      const before = await api.snapshot();
      const bytes = await datasetBytes({
        tensors: rejection.tensors?.() ?? [pixels(), labels()],
        metadata: rejection.metadata,
      });
      const response = await upload([filePart('dataset.safetensors', bytes)]);
      assert.equal(response.statusCode, 422, response.body);
      assert.equal(response.headers['content-type'], PROBLEM);
      const problem = response.json();
      assert.equal(problem.type, 'https://lorafuse.dev/problems/invalid-dataset');
      assert.equal(problem.file, 'dataset.safetensors');
      assert.equal(problem.tensor, rejection.tensor);
      assert.equal(problem.field, rejection.field);
      assert.match(problem.detail, rejection.pattern);
      assert.deepEqual(await api.snapshot(), before);
    });
  }

  it('refuses a file that is not safetensors, a missing file and a stray file, storing nothing', async () => {
    const before = await api.snapshot();
    const garbage = await upload([
      filePart('dataset.safetensors', Buffer.from('not a safetensors file at all')),
    ]);
    assert.equal(garbage.statusCode, 422);
    assert.equal(garbage.json().type, 'https://lorafuse.dev/problems/invalid-safetensors');
    const none = await upload([]);
    assert.equal(none.statusCode, 422);
    assert.equal(none.json().type, 'https://lorafuse.dev/problems/missing-file');
    const stray = await upload([filePart('train.safetensors', await datasetBytes())]);
    assert.equal(stray.statusCode, 400);
    assert.equal(stray.json().type, 'https://lorafuse.dev/problems/unexpected-file');
    assert.deepEqual(await api.snapshot(), before);
  });

  it('accepts a text dataset: input_ids with attention_mask', async () => {
    const bytes = await datasetBytes({
      tensors: [ids(), { ...ids(), name: 'attention_mask' }, labels()],
      metadata: datasetMetadata({ split: 'test', task: 'sst2' }),
    });
    const response = await upload([filePart('dataset.safetensors', bytes)]);
    assert.equal(response.statusCode, 201, response.body);
    assert.equal(response.json().split, 'test');
    assert.deepEqual(
      response.json().inputs.map((input: { name: string }) => input.name),
      ['input_ids', 'attention_mask'],
    );
  });
});
