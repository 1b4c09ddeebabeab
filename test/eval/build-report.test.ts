// report.json from raw evaluations: normalized accuracy = merged ÷ reference per task, averages over the tasks
// that have a value, rows keyed into `evaluations`, and report.html showing the same numbers.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { buildReport } from '../../src/eval/report/build-report.ts';
import type { ReportEvaluation } from '../../src/eval/report/report-types.ts';
import { renderReportHtml } from '../../src/eval/report/render-html.ts';

function evaluation(
  artifact: string,
  head: string,
  dataset: string,
  predictions: number[],
  labels: number[],
) {
  const correct = predictions.filter((p, i) => p === labels[i]).length;
  return {
    key: `${artifact}|${head}|${dataset}`,
    artifact,
    head,
    dataset,
    task: dataset.split('-')[0],
    split: dataset.endsWith('val') ? 'validation' : 'test',
    examples: labels.length,
    accuracy: correct / labels.length,
    loss: 0.5,
    predictions,
  } satisfies ReportEvaluation;
}

const labels = [0, 1, 1, 0];
const tasks = [
  { name: 'a', head: 'adapter:A', validation: 'a-val', test: 'a-test', reference: 'A' },
  { name: 'b', head: 'head:H', validation: 'b-val', test: 'b-test', reference: 'B' },
];
const evaluations: ReportEvaluation[] = [
  evaluation('M', 'adapter:A', 'a-test', [0, 1, 0, 0], labels), // 3/4
  evaluation('A', 'adapter:A', 'a-test', [0, 1, 1, 0], labels), // 4/4
  evaluation('M', 'adapter:A', 'a-val', [0, 0, 0, 0], labels), // 2/4
  evaluation('A', 'adapter:A', 'a-val', [0, 1, 1, 1], labels), // 3/4
  evaluation('BASE', 'adapter:A', 'a-test', [1, 1, 1, 1], labels), // 2/4
  evaluation('M', 'head:H', 'b-test', [1, 1, 1, 1], labels), // 2/4
  evaluation('B', 'head:H', 'b-test', [0, 1, 1, 1], labels), // 3/4
];

test('per-task and average accuracies, normalized by each task reference', () => {
  const report = buildReport({
    kind: 'merge',
    title: 'test',
    job: 'job_1',
    artifact: 'M',
    method: 'ties',
    params: { density: 0.5 },
    tasks,
    baseModel: 'BASE',
    evaluations,
    recipe: null,
    lineage: {},
    timings: {},
    versions: {},
  });
  const [a, b] = report.tasks;
  assert.deepEqual(
    [
      a.accuracy,
      a.referenceAccuracy,
      a.normalizedAccuracy,
      a.validationAccuracy,
      a.validationNormalizedAccuracy,
    ],
    [0.75, 1, 0.75, 0.5, 0.5 / 0.75],
  );
  assert.deepEqual(a.merged, { validation: 'M|adapter:A|a-val', test: 'M|adapter:A|a-test' });
  assert.deepEqual(a.base, { validation: null, test: 'BASE|adapter:A|a-test' });
  // Task b has no validation evaluations and no base row: nulls, not zeros.
  assert.deepEqual([b.accuracy, b.referenceAccuracy, b.normalizedAccuracy], [0.5, 0.75, 0.5 / 0.75]);
  assert.equal(b.validationAccuracy, null);
  assert.equal(b.base, null);
  assert.equal(report.averages.accuracy, (0.75 + 0.5) / 2);
  assert.equal(report.averages.normalizedAccuracy, (0.75 + 0.5 / 0.75) / 2);
  assert.equal(report.averages.validationAccuracy, 0.5, 'averaged over the tasks that have one');
  assert.equal(report.answer.averageNormalizedAccuracy, report.averages.normalizedAccuracy);
  assert.match(
    report.answer.summary,
    /^Ship M \(ties at density=0\.5\): average normalized test accuracy 70\.8% over 2 tasks\.$/,
  );
});

test('report.html shows the answer and every task row, escaped', async () => {
  const report = buildReport({
    kind: 'merge',
    title: 'A <b>merge</b>',
    job: null,
    artifact: 'M',
    method: null,
    params: null,
    tasks,
    baseModel: null,
    evaluations,
    recipe: null,
    lineage: {},
    timings: {},
    versions: {},
  });
  const html = await renderReportHtml(report);
  assert.match(html, /^<!doctype html>/);
  assert.ok(html.includes('A &lt;b&gt;merge&lt;/b&gt;'));
  assert.ok(!html.includes('<script'));
  // Every task cell carries its task, field and the JSON number behind the shown percentage.
  const shown = (task: string, field: string) =>
    new RegExp(`data-task="${task}" data-field="${field}" data-value="([^"]*)">([^<]*)<`)
      .exec(html)
      ?.slice(1);
  assert.deepEqual(shown('a', 'accuracy'), ['0.75', '75.00%']);
  assert.deepEqual(shown('a', 'referenceAccuracy'), ['1', '100.00%']);
  assert.deepEqual(shown('a', 'normalizedAccuracy'), ['0.75', '75.00%']);
  assert.deepEqual(shown('b', 'accuracy'), ['0.5', '50.00%']);
  assert.deepEqual(shown('b', 'referenceAccuracy'), ['0.75', '75.00%']);
  assert.deepEqual(shown('b', 'normalizedAccuracy'), [String(0.5 / 0.75), '66.67%']);
});
