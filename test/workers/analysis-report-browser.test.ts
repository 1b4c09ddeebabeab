// Issue 8's analyses end to end: two LoRA adapters fine-tuned by the service's own fine-tune jobs on two
// tasks, POST /v1/analyses with a disentanglement grid, the `report` artifact read back; the report's
// task numbers are recomputed from its recorded predictions and the datasets' labels, then report.html is
// opened in headless Chromium (Debian's package, driven by playwright-core): the table must show the JSON's
// numbers and every chart must have drawn marks. The screenshot goes to test-output/ (git-ignored).
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import supertest from 'supertest';
import { buildApp, type LorafuseApp } from '../../src/api/index.ts';
import { loadConfig } from '../../src/config.ts';
import { formatPercent } from '../../src/eval/report/render-html.ts';
import type { Report } from '../../src/eval/report/report-types.ts';
import { readDataset } from '../../src/model/train/dataset.ts';
import {
  type AnalyzeJobResult,
  createApiRedis,
  type FinetuneJobResult,
  JobService,
  type JobView,
} from '../../src/queue/index.ts';
import { ArtifactStore, REPORT_HTML, REPORT_JSON } from '../../src/store/index.ts';
import { startAnalyzeWorker } from '../../workers/analyze-worker.ts';
import { startFinetuneWorker } from '../../workers/finetune-worker.ts';
import type { QueueWorkerHandle } from '../../workers/queue-worker.ts';
import { startTestRedis, type TestRedis, tempDir, uniquePrefix } from '../helpers/redis.ts';
import { datasetMetadata, mlpDatasetTensors, writeDatasetFile } from '../store/dataset-fixtures.ts';
import { waitFor } from './fixtures.ts';
import { MLP_FIXTURE } from './training-fixtures.ts';

process.env.LORAFUSE_BACKEND ??= 'wasm';

export const CHROMIUM = '/usr/bin/chromium';
export const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--no-first-run',
];
const OUTPUT = path.resolve(import.meta.dirname, '..', '..', 'test-output');

describe('POST /v1/analyses over fine-tuned adapters, report.html in a real browser', () => {
  let server: TestRedis;
  const prefix = uniquePrefix('analysis');
  const data = tempDir('lorafuse-analysis');
  let app: LorafuseApp;
  let store: ArtifactStore;
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
    store = new ArtifactStore({ redis, dataDir: data.dir, prefix });
    app = await buildApp({ config, redis, store, jobs: new JobService({ redis, prefix }), logger: false });
    const settings = { lockDurationMs: 30_000, stalledIntervalMs: 30_000, shutdownGraceMs: 10_000 };
    const options = { redisUrl: server.url, prefix, dataDir: data.dir, settings, concurrency: 1 };
    workers = [startFinetuneWorker(options), startAnalyzeWorker(options)];
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

  /** Rows [from, to) of the task drawn from `seed` (one seed is one task: the same hidden map, new examples). */
  async function uploadDataset(
    name: string,
    seed: number,
    split: string,
    from: number,
    to: number,
  ): Promise<{ id: string; file: string }> {
    const [pixels, labels] = mlpDatasetTensors(to, seed);
    const tensors = [
      {
        ...pixels,
        shape: [to - from, ...pixels.shape.slice(1)],
        data: pixels.data.slice(from * 48, to * 48),
      },
      { ...labels, shape: [to - from], data: labels.data.slice(from, to) },
    ];
    const file = await writeDatasetFile(path.join(data.dir, `${name}-${split}.safetensors`), {
      tensors,
      metadata: datasetMetadata({ task: name, split }),
    });
    const id = (
      await supertest(app.server)
        .post('/v1/datasets')
        .attach('dataset.safetensors', file, 'dataset.safetensors')
        .expect(201)
    ).body.id as string;
    return { id, file };
  }

  it('rejects a request naming both adapters and models, or a task input that is not analysed', async () => {
    const both = await supertest(app.server)
      .post('/v1/analyses')
      .send({ base_model: 'mdl_x', adapters: ['adp_a', 'adp_b'], models: ['mdl_a', 'mdl_b'] })
      .expect(422);
    assert.equal(both.body.type.endsWith('invalid-analysis'), true, JSON.stringify(both.body));
    const stray = await supertest(app.server)
      .post('/v1/analyses')
      .send({
        base_model: 'mdl_x',
        adapters: ['adp_a', 'adp_b'],
        disentanglement: {
          tasks: [
            { input: 'adp_a', dataset: 'd' },
            { input: 'adp_c', dataset: 'd' },
          ],
        },
      })
      .expect(422);
    assert.equal(stray.body.field, 'disentanglement.tasks[1].input');
  });

  it('fine-tunes two task adapters, analyses them, and the report reads the same in Chromium', async () => {
    const modelDir = path.join(MLP_FIXTURE, 'model');
    const model = (
      await supertest(app.server)
        .post('/v1/models')
        .attach('model.safetensors', path.join(modelDir, 'model.safetensors'), 'model.safetensors')
        .attach('config.json', path.join(modelDir, 'config.json'), 'config.json')
        .expect(201)
    ).body.id as string;
    const tasks = [
      { name: 'compass-a', seed: 11 },
      { name: 'compass-b', seed: 23 },
    ];
    const adapters: string[] = [];
    const evalSets: Array<{ id: string; file: string }> = [];
    for (const task of tasks) {
      const train = await uploadDataset(task.name, task.seed, 'train', 0, 192);
      evalSets.push(await uploadDataset(task.name, task.seed, 'validation', 192, 288));
      const queued = await supertest(app.server)
        .post('/v1/finetunes')
        .send({
          model,
          dataset: train.id,
          mode: 'lora',
          rank: 4,
          steps: 120,
          batch_size: 32,
          learning_rate: 0.05,
          seed: 5,
        })
        .expect(202);
      const job = await finished(queued.body.id);
      assert.equal(job.state, 'completed', JSON.stringify(job.error));
      adapters.push((job.result as FinetuneJobResult).artifact.id);
    }

    const grid = [-1, -0.5, 0, 0.5, 1, 1.5];
    const queued = await supertest(app.server)
      .post('/v1/analyses')
      .send({
        base_model: model,
        adapters,
        density: 0.5,
        disentanglement: {
          tasks: tasks.map((t, i) => ({ input: adapters[i], dataset: evalSets[i].id, name: t.name })),
          grid,
          max_examples: 80,
        },
      })
      .expect(202);
    const job = await finished(queued.body.id);
    assert.equal(job.state, 'completed', JSON.stringify(job.error));
    assert.equal(job.type, 'analyze');
    const result = job.result as AnalyzeJobResult;
    assert.equal(result.artifact.kind, 'report');
    const record = await store.get(result.artifact.id);
    assert.ok(record, 'the report artifact is stored');
    const files = store.filePaths(record);
    const report = JSON.parse(readFileSync(files[REPORT_JSON], 'utf8')) as Report;
    assert.equal(report.kind, 'analysis');
    const analysis = report.analysis!;
    assert.deepEqual(
      analysis.inputs,
      tasks.map((t) => t.name),
    );
    assert.equal(analysis.cosine.parameters.length, 2);
    assert.ok(analysis.cosine.delta, 'adapters get a delta-space cosine');
    assert.equal(analysis.cosine.delta![0][0], 1);
    assert.ok(
      analysis.effectiveRank!.every(
        (r) => r.effectiveRank >= 1 - 1e-9 && r.effectiveRank <= r.rank + 1e-9 && r.rank === 4,
      ),
    );
    const d = analysis.disentanglement!;
    assert.deepEqual(d.grid, grid);
    assert.equal(d.error.length, grid.length);
    const zero = grid.indexOf(0);
    // ξ(0, 0) compares θ₀ with itself on both tasks; every ξ is a sum of two disagreement rates.
    assert.equal(d.error[zero][zero], 0);
    assert.ok(d.error.flat().every((v) => v >= 0 && v <= 2));
    assert.ok(
      d.error.flat().some((v) => v > 0),
      'merging two real task vectors interferes somewhere on the grid',
    );

    // The per-task numbers, recomputed from the recorded predictions and the datasets' own labels.
    for (const [i, row] of report.tasks.entries()) {
      const labels = (await readDataset(evalSets[i].file)).labels;
      const recompute = (key: string | null) => {
        const evaluation = report.evaluations.find((e) => e.key === key)!;
        assert.equal(evaluation.predictions.length, 80);
        const correct = evaluation.predictions.filter((p, k) => p === labels[k]).length;
        assert.equal(evaluation.accuracy, correct / 80);
        return correct / 80;
      };
      const merged = recompute(row.merged.validation);
      const reference = recompute(row.reference!.validation);
      assert.equal(row.validationAccuracy, merged);
      assert.equal(row.validationNormalizedAccuracy, merged / reference);
      assert.ok(reference > 0.45, `the fine-tuned adapter learned task ${row.task} (${reference})`);
    }

    const html = readFileSync(files[REPORT_HTML], 'utf8');
    assert.ok(!html.includes('<script'), 'report.html needs no script');
    if (!existsSync(CHROMIUM)) {
      assert.fail(`${CHROMIUM} is missing: apt-get install -y chromium (.ci/run does)`);
    }
    const { chromium } = await import('playwright-core');
    const profile = tempDir('lorafuse-chromium');
    const browser = await chromium.launchPersistentContext(profile.dir, {
      executablePath: CHROMIUM,
      args: CHROMIUM_ARGS,
      headless: true,
      viewport: { width: 1200, height: 900 },
    });
    try {
      const page = await browser.newPage();
      // Blobs have no file extension (Chromium would show them as text): open a copy named .html.
      mkdirSync(OUTPUT, { recursive: true });
      const pageFile = path.join(OUTPUT, 'analysis-report.html');
      writeFileSync(pageFile, html);
      await page.goto(`file://${pageFile}`);
      for (const row of report.tasks) {
        for (const field of ['validationAccuracy', 'validationNormalizedAccuracy'] as const) {
          const cell = page.locator(`td[data-task="${row.task}"][data-field="${field}"]`);
          assert.equal(Number(await cell.getAttribute('data-value')), row[field]);
          assert.equal((await cell.textContent())?.trim(), formatPercent(row[field]));
        }
      }
      const charts = await page.locator('figure[data-chart]').evaluateAll((figures) =>
        figures.map((f) => ({
          name: f.getAttribute('data-chart'),
          marks: f.querySelectorAll('svg .mark-rect path, svg .mark-rect rect, svg g.mark-rect > path')
            .length,
          width: f.querySelector('svg')?.getBoundingClientRect().width ?? 0,
        })),
      );
      assert.deepEqual(charts.map((c) => c.name).sort(), [
        'cosine-delta',
        'cosine-parameters',
        'disentanglement',
        'effective-rank',
        'sign-conflicts',
        'tasks',
      ]);
      for (const chart of charts) {
        assert.ok(chart.marks > 0 && chart.width > 50, `chart ${chart.name} drew ${chart.marks} marks`);
      }
      const heat = charts.find((c) => c.name === 'disentanglement')!;
      assert.ok(heat.marks >= grid.length * grid.length, `one cell per grid point (${heat.marks})`);
      await page.screenshot({ path: path.join(OUTPUT, 'analysis-report.png'), fullPage: true });
    } finally {
      await browser.close();
      profile.remove();
    }
  });
});
