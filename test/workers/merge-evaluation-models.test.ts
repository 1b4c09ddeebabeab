// An evaluated merge of fully fine-tuned models, run in-process: task heads default to each input model's own
// classifier, the merged model keeps them in lorafuse_heads.safetensors, and every evaluation in the report
// equals one made independently here (the merged body with task t's classifier put back, the references alone).
import assert from 'node:assert/strict';
import { cpSync, mkdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { loadRuntimeSettings } from '../../src/config.ts';
import type { Report } from '../../src/eval/report/report-types.ts';
import { initBackend } from '../../src/model/backend.ts';
import { evaluateModel } from '../../src/model/evaluate-model.ts';
import { ForwardContext } from '../../src/model/forward-context.ts';
import { readCheckpoint, readSafetensors } from '../../src/model/io/host-tensors.ts';
import { loadModel } from '../../src/model/load-model.ts';
import { readDataset } from '../../src/model/train/dataset.ts';
import { createApiRedis, type MergeJobPayload } from '../../src/queue/index.ts';
import {
  ArtifactStore,
  DATASET_FILE,
  LORAFUSE_VERSION,
  REPORT_HTML,
  REPORT_JSON,
  TASK_HEADS_FILE,
} from '../../src/store/index.ts';
import { writeSafetensors } from '../../src/tensors/index.ts';
import { runMergeJob } from '../../workers/merge/run-merge-job.ts';
import { startTestRedis, type TestRedis, tempDir, uniquePrefix } from '../helpers/redis.ts';
import { datasetMetadata, writeDatasetFile } from '../store/dataset-fixtures.ts';
import { MLP_FIXTURE } from './training-fixtures.ts';

process.env.LORAFUSE_BACKEND ??= 'wasm';

describe('evaluated merge of full models (in-process job)', () => {
  let server: TestRedis;
  const data = tempDir('lorafuse-merge-eval-models');
  const prefix = uniquePrefix('merge-eval-models');
  let store: ArtifactStore;
  let redis: ReturnType<typeof createApiRedis>;

  before(async () => {
    server = await startTestRedis();
    redis = createApiRedis(server.url);
    store = new ArtifactStore({ redis, dataDir: data.dir, prefix });
    await store.init();
    await initBackend({ log: () => undefined });
  });
  after(async () => {
    redis.disconnect();
    await server.stop();
    data.remove();
  });

  const lineage = { parents: [], lorafuseVersion: LORAFUSE_VERSION };

  /** The MLP fixture with every weight shifted by a per-model pattern: a stand-in for a fully fine-tuned model. */
  async function model(name: string, shift: number): Promise<string> {
    const dir = path.join(data.dir, name);
    cpSync(path.join(MLP_FIXTURE, 'model'), dir, { recursive: true });
    if (shift !== 0) {
      const weights = await readCheckpoint(dir);
      await writeSafetensors(
        path.join(dir, 'model.safetensors'),
        [...weights].map(([tensor, t]) => ({
          name: tensor,
          dtype: 'F32' as const,
          shape: t.shape,
          data: Float32Array.from(
            t.data as Float32Array,
            (v, i) => v + shift * Math.sin(i * 0.7 + shift * 10),
          ),
        })),
      );
    }
    return (await store.ingestDirectory('model', dir, lineage)).id;
  }

  async function dataset(name: string, split: string, seed: number): Promise<string> {
    const dir = path.join(data.dir, `ds-${name}`);
    mkdirSync(dir, { recursive: true });
    await writeDatasetFile(path.join(dir, DATASET_FILE), {
      n: 48,
      seed,
      metadata: datasetMetadata({ split }),
    });
    return (await store.ingestDirectory('dataset', dir, lineage)).id;
  }

  it('reads each task through its own model classifier and reports numbers that re-evaluate equal', async () => {
    const base = await model('base', 0);
    const inputs = [await model('m1', 0.3), await model('m2', -0.25)];
    const tasks = [
      {
        name: 't1',
        validation: await dataset('v1', 'validation', 21),
        test: await dataset('x1', 'test', 22),
      },
      {
        name: 't2',
        validation: await dataset('v2', 'validation', 23),
        test: await dataset('x2', 'test', 24),
      },
    ].map((t, i) => ({ ...t, head: `model:${inputs[i]}`, reference: inputs[i] }));
    const payload: MergeJobPayload = {
      recipe: {
        merge_method: 'linear',
        models: inputs.map((m) => ({ model: m, parameters: { weight: 0.5 } })),
        seed: 1,
      },
      inputs: [base, ...inputs],
      seed: 1,
      evaluation: { tasks, baseModel: base },
    };
    const result = await runMergeJob(
      { id: 'job_models_1', data: payload, updateProgress: async () => undefined },
      { redis, store, prefix, dataDir: data.dir, mergeWorkers: undefined, runtime: loadRuntimeSettings({}) },
    );
    assert.equal(result.artifact.kind, 'model');
    const merged = (await store.get(result.artifact.id))!;
    const reportRecord = (await store.get(result.report!.id))!;
    const report = JSON.parse(readFileSync(store.filePaths(reportRecord)[REPORT_JSON], 'utf8')) as Report;

    // The merged model keeps each task's head: exactly that input model's classifier.
    const heads = await readSafetensors(store.filePaths(merged)[TASK_HEADS_FILE]);
    assert.deepEqual(JSON.parse(heads.metadata.tasks), ['t1', 't2']);
    for (const [i, input] of inputs.entries()) {
      const own = await readCheckpoint(
        await store.linkFolder((await store.get(input))!, path.join(data.dir, `own-${i}`)),
      );
      assert.deepEqual(heads.tensors.get(`t${i + 1}.weight`)!.data, own.get('classifier.weight')!.data);
    }

    // Independent evaluations: load each artifact, put the task's classifier in place by hand.
    const load = async (id: string, as: string) =>
      loadModel(await store.linkFolder((await store.get(id))!, path.join(data.dir, as)));
    const mergedModel = await load(merged.id, 'check-merged');
    const baseModel = await load(base, 'check-base');
    for (const [i, task] of tasks.entries()) {
      const reference = await load(inputs[i], `check-ref-${i}`);
      const classifier = reference.params;
      for (const split of ['validation', 'test'] as const) {
        const id = split === 'validation' ? task.validation : task.test;
        const set = await readDataset(store.filePaths((await store.get(id))!)[DATASET_FILE]);
        const withHead = (m: typeof mergedModel) =>
          new ForwardContext(
            m.params,
            undefined,
            new Map([
              ['classifier.weight', classifier.get('classifier.weight')],
              ['classifier.bias', classifier.get('classifier.bias')],
            ]),
          );
        const expected = {
          merged: await evaluateModel(mergedModel, withHead(mergedModel), set),
          reference: await evaluateModel(reference, new ForwardContext(reference.params), set),
          base: await evaluateModel(baseModel, withHead(baseModel), set),
        };
        for (const [who, artifact] of [
          ['merged', merged.id],
          ['reference', inputs[i]],
          ['base', base],
        ] as const) {
          const e = report.evaluations.find((r) => r.key === `${artifact}|${task.head}|${id}`);
          assert.ok(e, `${who} ${task.name} ${split}`);
          assert.deepEqual(e.predictions, [...expected[who].predictions], `${who} ${task.name} ${split}`);
          assert.ok(Math.abs(e.loss - expected[who].loss) < 1e-6);
        }
      }
      reference.dispose();
    }
    mergedModel.dispose();
    baseModel.dispose();
    const row = report.tasks[0];
    assert.equal(row.normalizedAccuracy, row.accuracy! / row.referenceAccuracy!);

    // The task-vector analysis of the inputs against the base, recomputed here from the raw checkpoints:
    // τᵢ = θᵢ − θ₀ over every tensor but the classifier (a head is never part of a task vector).
    const checkpoint = async (id: string, as: string) =>
      readCheckpoint(await store.linkFolder((await store.get(id))!, path.join(data.dir, as)));
    const theta0 = await checkpoint(base, 'tv-base');
    const taskVectors: number[][] = [];
    for (const [i, input] of inputs.entries()) {
      const theta = await checkpoint(input, `tv-${i}`);
      const tau: number[] = [];
      for (const [name, t] of theta) {
        if (name.startsWith('classifier.') || !(t.data instanceof Float32Array)) continue;
        const b = theta0.get(name)!.data as Float32Array;
        for (let k = 0; k < t.data.length; k++) tau.push(t.data[k] - b[k]);
      }
      taskVectors.push(tau);
    }
    const dot = (a: number[], b: number[]) => a.reduce((sum, v, k) => sum + v * b[k], 0);
    const analysis = report.analysis;
    assert.ok(analysis, 'the merge report carries the task-vector analysis');
    assert.deepEqual(analysis.inputs, ['t1', 't2']);
    for (const [i, tau] of taskVectors.entries()) {
      assert.ok(Math.abs(analysis.norms[i] - Math.sqrt(dot(tau, tau))) < 1e-6 * analysis.norms[i]);
      for (const [j, other] of taskVectors.entries()) {
        const cosine = dot(tau, other) / Math.sqrt(dot(tau, tau) * dot(other, other));
        assert.ok(Math.abs(analysis.cosine.parameters[i][j] - cosine) < 1e-9, `cosine ${i},${j}`);
      }
    }
    assert.ok(analysis.signConflict.length > 0);
    for (const layer of analysis.signConflict) assert.ok(layer.rate >= 0 && layer.rate <= 1, layer.layer);
    assert.equal(typeof report.timings.analysisMs, 'number');
    // The page draws it: the cosine heatmap and the sign-conflict bars, as non-empty SVG.
    const html = readFileSync(store.filePaths(reportRecord)[REPORT_HTML], 'utf8');
    for (const chart of ['cosine-parameters', 'sign-conflicts']) {
      const figure = html.match(new RegExp(`data-chart="${chart}">(<svg[\\s\\S]*?</svg>)`));
      assert.ok(figure, `report.html draws ${chart}`);
      assert.match(figure[1], /<path|<rect/, `${chart} has marks`);
    }
  });
});
