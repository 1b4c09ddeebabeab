// POST /v1/analyses with a stored head on a disentanglement task: the request is checked (the head exists and
// answers the dataset's classes) and queued with the head; the job reads that task through it. The report's
// "reference" row of the task (its task vector alone) must equal an evaluation made here of the base with the
// adapter and the stored head put in place by hand, and differ from the adapter read through its own head.
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { headOverrides, readStoredHead } from '../../src/eval/heads.ts';
import type { Report } from '../../src/eval/report/report-types.ts';
import { initBackend } from '../../src/model/backend.ts';
import { evaluateModel } from '../../src/model/evaluate-model.ts';
import { ForwardContext } from '../../src/model/forward-context.ts';
import { loadModel } from '../../src/model/load-model.ts';
import { loadAdapter } from '../../src/model/lora/peft-adapter.ts';
import { readDataset } from '../../src/model/train/dataset.ts';
import type { AnalyzeJobPayload } from '../../src/queue/index.ts';
import { DATASET_FILE, HEAD_FILE, REPORT_JSON } from '../../src/store/index.ts';
import { writeSafetensors } from '../../src/tensors/index.ts';
import { runAnalyzeJob } from '../../workers/analyze/run-analyze-job.ts';
import { filePart, processorDependencies, startApi, type TestApi } from '../api/harness.ts';
import { postParts, uploadDataset, uploadMlp } from '../helpers/mlp-uploads.ts';
import { startTestRedis, type TestRedis } from '../helpers/redis.ts';

process.env.LORAFUSE_BACKEND ??= 'wasm';

describe('analyses read a task through a stored head', () => {
  let server: TestRedis;
  let api: TestApi;
  let model: string;
  let adapters: string[];
  let dataset: string;
  const storedHead = async (name: string, classes: number) => {
    const file = path.join(api.workDir, `${name}.safetensors`);
    const weight = Float32Array.from({ length: classes * 16 }, (_, i) => Math.sin(i * 1.3 + classes));
    await writeSafetensors(file, [{ name: 'weight', dtype: 'F32', shape: [classes, 16], data: weight }]);
    return postParts(api, '/v1/heads', [filePart('head.safetensors', await fs.readFile(file))]);
  };
  const analysis = (head: string) => ({
    base_model: model,
    adapters,
    disentanglement: {
      tasks: [
        { input: adapters[0], dataset, name: 'first', head },
        { input: adapters[1], dataset, name: 'second' },
      ],
      grid: [0, 1],
      max_examples: 24,
    },
  });

  before(async () => {
    server = await startTestRedis();
    api = await startApi(server.url);
    await initBackend({ log: () => undefined });
    ({ model, adapters } = await uploadMlp(api));
    dataset = await uploadDataset(api, 'test', 5, 24);
  });
  after(async () => {
    await api.close();
    await server.stop();
  });

  it('refuses an unknown head and one that does not answer the dataset classes', async () => {
    const unknown = await api.app.inject({
      method: 'POST',
      url: '/v1/analyses',
      payload: analysis('hed_00000000000000000000000000'),
    });
    assert.equal(unknown.statusCode, 422, unknown.body);
    assert.match(unknown.json().type, /unknown-artifact$/);
    const three = await storedHead('three', 3);
    const mismatch = await api.app.inject({ method: 'POST', url: '/v1/analyses', payload: analysis(three) });
    assert.equal(mismatch.statusCode, 422, mismatch.body);
    assert.match(mismatch.json().type, /head-class-mismatch$/);
    assert.match(mismatch.json().detail, /^task first: /);
  });

  it('evaluates the task through the stored head', async () => {
    const head = await storedHead('four', 4);
    const response = await api.app.inject({ method: 'POST', url: '/v1/analyses', payload: analysis(head) });
    assert.equal(response.statusCode, 202, response.body);
    const id = response.json().id as string;
    const data = (await api.jobs.queue('analyze').getJob(id))!.data as AnalyzeJobPayload;
    assert.equal(data.disentanglement!.tasks[0].head, `head:${head}`);
    assert.equal(data.disentanglement!.tasks[1].head, undefined);
    assert.ok(data.inputs.includes(head), 'the head cannot be deleted while the job waits');

    const result = await runAnalyzeJob(
      { id, data, updateProgress: async () => undefined },
      processorDependencies(api),
    );
    const record = (await api.store.get(result.artifact.id))!;
    const report = JSON.parse(await fs.readFile(api.store.filePaths(record)[REPORT_JSON], 'utf8')) as Report;
    const row = report.tasks.find((t) => t.task === 'first')!;
    assert.equal(row.head, `head:${head}`);
    const reference = report.evaluations.find((e) => e.key === row.reference!.test)!;
    assert.equal(reference.head, `head:${head}`);

    // Independently: the base with the first adapter, read through the stored head or through its own.
    const link = async (artifact: string, as: string) =>
      api.store.linkFolder((await api.store.get(artifact))!, path.join(api.workDir, as));
    const base = await loadModel(await link(model, 'check-base'));
    const lora = await loadAdapter(await link(adapters[0], 'check-adapter'), base);
    const set = await readDataset(api.store.filePaths((await api.store.get(dataset))!)[DATASET_FILE]);
    const stored = headOverrides(
      await readStoredHead(api.store.filePaths((await api.store.get(head))!)[HEAD_FILE]),
    );
    const through = async (overrides: Map<string, unknown>) =>
      evaluateModel(base, new ForwardContext(base.params, lora.modules, overrides as never), set);
    const withStored = await through(new Map([...lora.overrides, ...stored]));
    const withOwn = await through(lora.overrides);
    assert.deepEqual(reference.predictions, [...withStored.predictions]);
    assert.ok(Math.abs(reference.loss - withStored.loss) < 1e-4, `${reference.loss} vs ${withStored.loss}`);
    assert.notDeepEqual(
      [...withStored.predictions],
      [...withOwn.predictions],
      'the head changes the answers',
    );
    for (const t of stored.values()) t.dispose();
    lora.dispose();
    base.dispose();
  });
});
