// report.html from a Report alone: every string escaped, the task table's cells carrying the JSON's numbers,
// a chart per section (search grid with the chosen point outlined, cosine, disentanglement) and no script.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { escapeHtml, formatPercent, renderReportHtml } from '../../src/eval/report/render-html.ts';
import type { Report, ReportEvaluation } from '../../src/eval/report/report-types.ts';

const EVIL = '<img src=x onerror="alert(1)">&';

function evaluation(key: string, accuracy: number, split: 'validation' | 'test'): ReportEvaluation {
  return {
    key,
    artifact: key,
    head: 'model',
    dataset: 'dst',
    task: EVIL,
    split,
    examples: 4,
    accuracy,
    loss: 0.5,
    predictions: [0, 1, 2, 3],
  };
}

function sampleReport(): Report {
  const lambdas = [0.5, 1];
  const densities = [0.2, 0.5, 1];
  const points = lambdas.flatMap((lambda) =>
    densities.map((density) => ({
      params: { lambda, density },
      job: null,
      artifact: null,
      validation: { averageAccuracy: lambda * density, averageNormalizedAccuracy: lambda * density + 0.1 },
    })),
  );
  return {
    schemaVersion: 1,
    kind: 'search',
    title: `Search ${EVIL}`,
    createdAt: '2026-12-04T00:00:00.000Z',
    job: 'job_1',
    answer: {
      summary: `Ship ${EVIL}`,
      artifact: 'mdl_x',
      method: 'ties',
      params: { lambda: 1, density: 1 },
      averageNormalizedAccuracy: 0.9375,
    },
    tasks: [
      {
        task: EVIL,
        head: 'adapter:adp_1',
        merged: { validation: 'm-v', test: 'm-t' },
        reference: { artifact: 'adp_1', validation: 'r-v', test: 'r-t' },
        base: { validation: null, test: 'b-t' },
        accuracy: 0.75,
        referenceAccuracy: 0.8,
        normalizedAccuracy: 0.9375,
        validationAccuracy: 0.7,
        validationNormalizedAccuracy: 0.875,
      },
    ],
    averages: {
      accuracy: 0.75,
      normalizedAccuracy: 0.9375,
      validationAccuracy: 0.7,
      validationNormalizedAccuracy: 0.875,
    },
    evaluations: [
      evaluation('m-v', 0.7, 'validation'),
      evaluation('m-t', 0.75, 'test'),
      evaluation('r-v', 0.8, 'validation'),
      evaluation('r-t', 0.8, 'test'),
      evaluation('b-t', 0.25, 'test'),
    ],
    search: { grid: { lambda: lambdas, density: densities }, points, chosen: 5, selectedOn: 'validation' },
    analysis: {
      inputs: ['a', EVIL],
      norms: [1, 2],
      cosine: {
        parameters: [
          [1, 0.2],
          [0.2, 1],
        ],
        delta: [
          [1, -0.1],
          [-0.1, 1],
        ],
      },
      meanOffDiagonalCosine: 0.2,
      signConflict: [{ layer: 'layers.0', rate: 0.3 }],
      disentanglement: {
        tasks: ['a', EVIL],
        grid: [-1, 0, 1],
        error: [
          [0.5, 0.2, 0.6],
          [0.1, 0, 0.1],
          [0.7, 0.2, 0.9],
        ],
      },
    },
    learned: { coefficients: [0.3, 0.4] },
    tables: [{ title: EVIL, columns: ['x', 'y'], rows: [[EVIL, 1.5]] }],
    recipe: { merge_method: EVIL },
    lineage: { parents: [] },
    timings: { totalSeconds: 1.5 },
    versions: { lorafuse: '0.1.0' },
  };
}

describe('renderReportHtml', () => {
  it('escapes every string and needs no script', async () => {
    const html = await renderReportHtml(sampleReport());
    assert.ok(!html.includes('<img'), 'no raw markup from the report');
    assert.ok(!html.includes('<script'), 'no script');
    assert.ok(html.includes(escapeHtml(EVIL)));
    assert.equal(escapeHtml(`"'<>&`), '&quot;&#39;&lt;&gt;&amp;');
  });

  it('puts the JSON numbers in data attributes and the formatted ones in the cells', async () => {
    const report = sampleReport();
    const html = await renderReportHtml(report);
    const task = escapeHtml(EVIL);
    for (const [field, value] of [
      ['accuracy', 0.75],
      ['referenceAccuracy', 0.8],
      ['normalizedAccuracy', 0.9375],
      ['baseAccuracy', 0.25],
      ['validationAccuracy', 0.7],
      ['referenceValidationAccuracy', 0.8],
      ['validationNormalizedAccuracy', 0.875],
    ] as const) {
      const cell = new RegExp(
        `<td class="num" data-task="${task.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}" data-field="${field}" data-value="([^"]*)">([^<]*)</td>`,
      );
      const match = cell.exec(html);
      assert.ok(match, `cell ${field}`);
      assert.equal(Number(match[1]), value);
      assert.equal(match[2], formatPercent(value));
    }
    assert.match(html, /data-task="average" data-field="normalizedAccuracy" data-value="0.9375"/);
  });

  it('draws every chart, with the chosen search point outlined', async () => {
    const html = await renderReportHtml(sampleReport());
    const charts = [...html.matchAll(/<figure class="chart" data-chart="([^"]+)">(.*?)<\/figure>/gs)];
    assert.deepEqual(charts.map((c) => c[1]).sort(), [
      'cosine-delta',
      'cosine-parameters',
      'disentanglement',
      'search',
      'sign-conflicts',
      'tasks',
    ]);
    for (const [, name, body] of charts) {
      assert.match(body, /^<svg/, name);
      assert.ok((body.match(/<path/g) ?? []).length > 0, `${name} has marks`);
    }
    const search = charts.find((c) => c[1] === 'search')![2];
    // 6 grid cells, plus one outline (stroke #000, no fill) for the chosen point.
    assert.equal((search.match(/stroke="#000"/g) ?? []).length, 1);
  });
});
