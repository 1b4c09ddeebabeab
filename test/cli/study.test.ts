// `lorafuse study --quick` end to end at a reduced size: the real command against a real redis-server, every
// fine-tune, merge (with its search and evaluation) and analysis through the queue and the workers. Checks the
// printed table, results.json (each average recomputed from its per-task rows) and the report's tables and
// charts; then a second run with the same seed must give the same fine-tuned artifacts and the same table cells.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { StudyResults } from '../../src/cli/study/results.ts';
import { spawnLorafuse } from '../helpers/lorafuse-process.ts';
import { startTestRedis, type TestRedis, tempDir, uniquePrefix } from '../helpers/redis.ts';

const REDUCED = [
  '--quick',
  '--seed',
  '3',
  '--train-examples',
  '48',
  '--validation-examples',
  '24',
  '--test-examples',
  '24',
  '--steps',
  '2',
  '--grid-points',
  '3',
];
// Only guards against a hang: the run takes about a minute on an idle 2-core machine.
const HANG_GUARD_MS = 30 * 60_000;

async function runStudy(
  args: string[],
  env: Record<string, string>,
): Promise<{ code: number | null; output: string }> {
  const study = spawnLorafuse(['study', ...args], { ...env, LOG_LEVEL: 'warn' });
  const timer = setTimeout(() => study.child.kill('SIGKILL'), HANG_GUARD_MS);
  const { code } = await study.exited;
  clearTimeout(timer);
  return { code, output: study.output() };
}

const mean = (values: number[]) => values.reduce((a, b) => a + b, 0) / values.length;

describe('lorafuse study --quick (reduced size, through the service)', () => {
  let redis: TestRedis;
  const out = tempDir('lorafuse-study');
  let first: { code: number | null; output: string };
  let results: StudyResults;

  before(async () => {
    redis = await startTestRedis();
    first = await runStudy([...REDUCED, '--out', path.join(out.dir, 'a')], {
      REDIS_URL: redis.url,
      LORAFUSE_QUEUE_PREFIX: uniquePrefix('study-a'),
    });
    if (first.code === 0) results = JSON.parse(readFileSync(path.join(out.dir, 'a', 'results.json'), 'utf8'));
  });
  after(async () => {
    await redis.stop();
    out.remove();
  });

  it('prints the paper-style table, the individual accuracies, the cosines and where the report is', () => {
    assert.equal(first.code, 0, first.output);
    const output = first.output;
    assert.match(output, /method\s+full\s+LoRA\s+L-LoRA/);
    for (const row of [
      'task arithmetic · parameter space',
      'task arithmetic · ΔW space',
      'TIES-merging · ΔW space',
      'simple averaging · parameter space',
      'LoraHub · parameter space',
    ]) {
      // The full column has no ΔW space (n/a); the LoRA and L-LoRA columns have numbers.
      assert.match(
        output,
        new RegExp(`${row}\\s+(n/a|[\\d.]+ / [\\d.]+)\\s+[\\d.]+ / [\\d.]+\\s+[\\d.]+ / [\\d.]+`),
        row,
      );
    }
    assert.match(output, /Individual test accuracy/);
    assert.match(output, /lora\s+parameters -?[\d.]+\s+ΔW -?[\d.]+/);
    assert.match(
      output,
      new RegExp(
        `report\\s+${path.join(out.dir, 'a', 'report.html').replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}`,
      ),
    );
  });

  it('results.json holds every cell, with versions, seed, backend and timings, and averages that add up', () => {
    assert.equal(first.code, 0, first.output);
    assert.equal(results.seed, 3);
    assert.equal(results.preset, 'quick');
    assert.ok(results.versions.lorafuse && results.versions.node);
    assert.ok(results.backends.length > 0 && !results.backends.includes('unknown'), String(results.backends));
    assert.ok(results.timings.totalSeconds > 0);
    assert.equal(results.inputs.tasks.length, 4);
    assert.equal(results.finetunes.length, 12);
    // full: 4 methods; lora and llora: 3 methods × 2 spaces + LoraHub.
    assert.equal(results.merges.length, 4 + 7 + 7);
    for (const merge of results.merges) {
      assert.equal(merge.state, 'completed', `${merge.mode} ${merge.method} ${merge.space}: ${merge.error}`);
      assert.equal(merge.tasks.length, 4);
      const accuracies = merge.tasks.map((t) => t.accuracy!);
      assert.ok(Math.abs(merge.averageAccuracy! - mean(accuracies)) < 1e-12);
      for (const task of merge.tasks) {
        if (task.referenceAccuracy! > 0) {
          assert.ok(Math.abs(task.normalizedAccuracy! - task.accuracy! / task.referenceAccuracy!) < 1e-12);
        }
      }
      if (merge.method === 'task_arithmetic') assert.ok([0.3, 0.5, 0.7, 1].includes(merge.chosen!.lambda));
      if (merge.method === 'ties') assert.ok([0.2, 0.5].includes(merge.chosen!.density));
    }
    for (const mode of ['full', 'lora', 'llora']) {
      const cosine = results.table.cosine[mode];
      assert.ok(cosine.parameters !== null && Math.abs(cosine.parameters) <= 1);
      if (mode !== 'full') assert.ok(cosine.delta !== null && Math.abs(cosine.delta) <= 1);
      assert.ok(cosine.disentanglement !== null && cosine.disentanglement >= 0);
      for (const task of results.inputs.tasks) {
        const individual = results.table.individual[mode][task.name];
        assert.ok(individual !== null && individual >= 0 && individual <= 1);
      }
    }
    const ta = results.table.rows.find((r) => r.method === 'task_arithmetic' && r.space === 'parameters')!;
    const taLora = results.merges.find(
      (m) => m.mode === 'lora' && m.method === 'task_arithmetic' && m.space === 'parameters',
    )!;
    assert.deepEqual(ta.cells.lora, [taLora.averageAccuracy, taLora.averageNormalizedAccuracy]);
  });

  it('writes a report with the comparison tables and each mode’s cosine matrices and disentanglement heatmap', () => {
    assert.equal(first.code, 0, first.output);
    const html = readFileSync(path.join(out.dir, 'a', 'report.html'), 'utf8');
    assert.match(html, /<title>lorafuse study \(quick\)/);
    assert.match(html, /Average absolute test accuracy/);
    assert.match(html, /Average normalized test accuracy/);
    for (const mode of ['full fine-tuning', 'LoRA', 'L-LoRA'])
      assert.ok(html.includes(`Task vectors of the ${mode} fine-tunes`), mode);
    assert.equal(html.match(/data-chart="cosine-parameters"/g)?.length, 3);
    assert.equal(html.match(/data-chart="cosine-delta"/g)?.length, 2);
    assert.equal(html.match(/data-chart="disentanglement"/g)?.length, 3);
    assert.ok((html.match(/<svg/g)?.length ?? 0) >= 8, 'charts drawn as inline SVG');
    // The table cells carry the JSON numbers.
    const ta = results.table.rows.find((r) => r.method === 'task_arithmetic' && r.space === 'parameters')!;
    assert.ok(html.includes(`data-value="${ta.cells.llora![0]}"`));
  });

  it('the same seed gives the same fine-tuned artifacts and the same table cells', async () => {
    assert.equal(first.code, 0, first.output);
    const second = await runStudy(
      [...REDUCED, '--modes', 'lora,llora', '--methods', 'task_arithmetic', '--out', path.join(out.dir, 'b')],
      { REDIS_URL: redis.url, LORAFUSE_QUEUE_PREFIX: uniquePrefix('study-b') },
    );
    assert.equal(second.code, 0, second.output);
    const again = JSON.parse(readFileSync(path.join(out.dir, 'b', 'results.json'), 'utf8')) as StudyResults;
    for (const tuned of again.finetunes) {
      const before = results.finetunes.find((f) => f.mode === tuned.mode && f.task === tuned.task)!;
      assert.ok(tuned.weightsSha256, 'weights digest recorded');
      assert.equal(tuned.weightsSha256, before.weightsSha256, `${tuned.mode} ${tuned.task}`);
    }
    for (const space of ['parameters', 'delta'] as const) {
      const row = (r: StudyResults) =>
        r.table.rows.find((x) => x.method === 'task_arithmetic' && x.space === space)!;
      for (const mode of ['lora', 'llora'])
        assert.deepEqual(row(again).cells[mode], row(results).cells[mode], `${mode} ${space}`);
    }
    for (const mode of ['lora', 'llora'])
      assert.deepEqual(again.table.individual[mode], results.table.individual[mode]);
  });
});
