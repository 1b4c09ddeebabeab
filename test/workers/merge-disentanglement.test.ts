// The weight-disentanglement heatmap in an evaluated merge's report: POST /v1/merges resolves
// `evaluation.disentanglement` before queueing (default: the first two tasks on a bounded grid; `false`: none;
// bad task names, grids or example counts are 422s), the job (run in-process) puts ξ(λ₁, λ₂) in report.json
// and draws it in report.html, and the matrix equals the one POST /v1/analyses computes for the same adapters,
// heads, validation datasets, grid and examples.
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { Report } from '../../src/eval/report/report-types.ts';
import { initBackend } from '../../src/model/backend.ts';
import { readSafetensors } from '../../src/model/io/host-tensors.ts';
import type { AnalyzeJobPayload, MergeJobPayload } from '../../src/queue/index.ts';
import { ADAPTER_WEIGHTS, REPORT_HTML, REPORT_JSON } from '../../src/store/index.ts';
import { writeSafetensors } from '../../src/tensors/index.ts';
import { runAnalyzeJob } from '../../workers/analyze/run-analyze-job.ts';
import { runMergeJob } from '../../workers/merge/run-merge-job.ts';
import { filePart, processorDependencies, startApi, type TestApi } from '../api/harness.ts';
import { folderParts, MLP, postParts, uploadEvaluationTasks, uploadMlp } from '../helpers/mlp-uploads.ts';
import { startTestRedis, type TestRedis } from '../helpers/redis.ts';

process.env.LORAFUSE_BACKEND ??= 'wasm';

const GRID = [-1, 0, 0.5, 1, 2];

describe('the weight disentanglement in merge reports', () => {
  let server: TestRedis;
  let api: TestApi;
  let model: string;
  let adapters: string[];
  let tasks: Awaited<ReturnType<typeof uploadEvaluationTasks>>;

  const merge = (evaluation: Record<string, unknown>) =>
    api.app.inject({
      method: 'POST',
      url: '/v1/merges',
      payload: {
        merge_method: 'task_arithmetic',
        base_model: model,
        models: adapters.map((id) => ({ adapter: id })),
        parameters: { lambda: 1, weight: 1 },
        evaluation: { tasks, ...evaluation },
      },
    });
  const queuedData = async <T>(queue: 'merge' | 'analyze', id: string) =>
    (await api.jobs.queue(queue).getJob(id))!.data as T;
  const deps = () => processorDependencies(api);
  const readReport = async (id: string) => {
    const files = api.store.filePaths((await api.store.get(id))!);
    return {
      json: JSON.parse(await fs.readFile(files[REPORT_JSON], 'utf8')) as Report,
      html: await fs.readFile(files[REPORT_HTML], 'utf8'),
    };
  };

  before(async () => {
    server = await startTestRedis();
    api = await startApi(server.url);
    await initBackend({ log: () => undefined });
    const uploaded = await uploadMlp(api);
    model = uploaded.model;
    // A second task vector unlike the first (the fixture's adapter with every weight reshaped), so ξ is not
    // symmetric in (λ₁, λ₂) and a swapped or mislabelled pair shows.
    const weights = await readSafetensors(path.join(MLP, 'adapter', ADAPTER_WEIGHTS));
    const file = path.join(api.workDir, 'other-adapter.safetensors');
    await writeSafetensors(
      file,
      [...weights.tensors].map(([name, t]) => ({
        name,
        dtype: 'F32' as const,
        shape: t.shape,
        data: Float32Array.from(t.data as Float32Array, (v, i) => -1.5 * v + 0.05 * Math.sin(i * 0.9)),
      })),
    );
    const other = await postParts(api, '/v1/adapters', [
      ...(await folderParts(path.join(MLP, 'adapter'))).filter((p) => p.name !== ADAPTER_WEIGHTS),
      filePart(ADAPTER_WEIGHTS, await fs.readFile(file)),
      { name: 'base_model', data: model },
    ]);
    adapters = [uploaded.adapters[0], other];
    tasks = await uploadEvaluationTasks(api, 40);
  });
  after(async () => {
    await api.close();
    await server.stop();
  });

  it('checks the option before queueing and fills its bounded defaults', async () => {
    for (const [option, field] of [
      [{ tasks: ['a', 'nope'] }, 'evaluation.disentanglement.tasks[1]'],
      [{ tasks: ['a', 'a'] }, 'evaluation.disentanglement.tasks[1]'],
      [{ grid: Array.from({ length: 22 }, (_, i) => i) }, 'evaluation.disentanglement.grid'],
      [{ grid: [1, 1] }, 'evaluation.disentanglement.grid'],
      [{ max_examples: 0 }, 'evaluation.disentanglement.max_examples'],
      [{ max_examples: 1025 }, 'evaluation.disentanglement.max_examples'],
      [{ lambda: [1] }, 'evaluation.disentanglement.lambda'],
      ['yes', 'evaluation.disentanglement'],
    ] as const) {
      const response = await merge({ disentanglement: option });
      assert.equal(response.statusCode, 422, `${JSON.stringify(option)}: ${response.body}`);
      assert.match(response.json().type, /invalid-evaluation$/);
      assert.equal(response.json().path, field, response.body);
    }
    const byDefault = await merge({});
    assert.equal(byDefault.statusCode, 202, byDefault.body);
    const data = await queuedData<MergeJobPayload>('merge', byDefault.json().id);
    assert.deepEqual(data.evaluation!.disentanglement, {
      tasks: [0, 1],
      grid: [-2, -1.5, -1, -0.5, 0, 0.5, 1, 1.5, 2],
      maxExamples: 64,
    });
    const off = await merge({ disentanglement: false });
    assert.equal(off.statusCode, 202, off.body);
    assert.equal(
      (await queuedData<MergeJobPayload>('merge', off.json().id)).evaluation!.disentanglement,
      undefined,
    );
    const picked = await merge({ disentanglement: { tasks: ['b', 'a'], grid: [0, 1], max_examples: 8 } });
    assert.equal(picked.statusCode, 202, picked.body);
    assert.deepEqual(
      (await queuedData<MergeJobPayload>('merge', picked.json().id)).evaluation!.disentanglement,
      {
        tasks: [1, 0],
        grid: [0, 1],
        maxExamples: 8,
      },
    );
    // Without a base model that is not an input there are no task vectors: asked for, it is refused.
    const noBase = await api.app.inject({
      method: 'POST',
      url: '/v1/merges',
      payload: {
        merge_method: 'linear',
        models: [{ model }, { model }],
        parameters: { weight: 0.5 },
        evaluation: {
          tasks: tasks.map((t) => ({ ...t, head: 'model' })),
          disentanglement: { tasks: ['a', 'b'] },
        },
      },
    });
    assert.equal(noBase.statusCode, 422, noBase.body);
    assert.match(noBase.json().detail, /base model/);
  });

  it('draws ξ in the report with the numbers POST /v1/analyses gives for the same inputs', async () => {
    const submitted = await merge({ disentanglement: { tasks: ['b', 'a'], grid: GRID, max_examples: 24 } });
    assert.equal(submitted.statusCode, 202, submitted.body);
    const id = submitted.json().id as string;
    const data = await queuedData<MergeJobPayload>('merge', id);
    const result = await runMergeJob({ id, data, updateProgress: async () => undefined }, deps());
    const { json: report, html } = await readReport(result.report!.id);
    const xi = report.analysis?.disentanglement;
    assert.ok(xi, `the report has ξ: ${JSON.stringify(report.tables)}`);
    assert.deepEqual(xi.tasks, ['b', 'a']);
    assert.deepEqual(xi.grid, GRID);
    assert.equal(xi.error.length, GRID.length);
    for (const row of xi.error) assert.equal(row.length, GRID.length);
    // The two single-task models agree with themselves: ξ(0, 0) = 0, and it grows away from the origin.
    assert.equal(xi.error[GRID.indexOf(0)][GRID.indexOf(0)], 0);
    assert.ok(
      xi.error.flat().some((v) => v > 0),
      'the tasks interfere somewhere on the grid',
    );
    assert.ok(report.timings.disentanglementForwardPasses > 0);

    // The heatmap: one cell per grid point in the disentanglement figure.
    const figure = html.match(/<figure class="chart" data-chart="disentanglement">(.*?)<\/figure>/s);
    assert.ok(figure, 'report.html draws the disentanglement heatmap');
    assert.match(figure[1], /^<svg/);
    assert.ok((figure[1].match(/<path/g) ?? []).length >= GRID.length * GRID.length, 'a mark per cell');

    // The same pair through POST /v1/analyses: task b (input 1) first, each read through the merge's task head.
    const byName = new Map(data.evaluation!.tasks.map((t, i) => [t.name, { ...t, input: adapters[i] }]));
    const analysisTask = (name: string) => {
      const task = byName.get(name)!;
      return {
        input: task.input,
        dataset: task.validation,
        name,
        ...(task.head === 'model' ? {} : { head: task.head.slice(task.head.indexOf(':') + 1) }),
      };
    };
    const analysis = await api.app.inject({
      method: 'POST',
      url: '/v1/analyses',
      payload: {
        base_model: model,
        adapters,
        disentanglement: { tasks: [analysisTask('b'), analysisTask('a')], grid: GRID, max_examples: 24 },
      },
    });
    assert.equal(analysis.statusCode, 202, analysis.body);
    const analysisId = analysis.json().id as string;
    const analyzed = await runAnalyzeJob(
      {
        id: analysisId,
        data: await queuedData<AnalyzeJobPayload>('analyze', analysisId),
        updateProgress: async () => undefined,
      },
      deps(),
    );
    const reference = (await readReport(analyzed.artifact.id)).json.analysis!.disentanglement!;
    assert.deepEqual(reference.grid, xi.grid);
    assert.deepEqual(xi.error, reference.error);
  });

  it('leaves ξ out when turned off', async () => {
    const submitted = await merge({ disentanglement: false });
    const id = submitted.json().id as string;
    const data = await queuedData<MergeJobPayload>('merge', id);
    const result = await runMergeJob({ id, data, updateProgress: async () => undefined }, deps());
    const { json: report, html } = await readReport(result.report!.id);
    assert.ok(report.analysis, 'the rest of the analysis stays');
    assert.equal(report.analysis.disentanglement, undefined);
    assert.ok(!html.includes('data-chart="disentanglement"'));
  });
});
