// report.html from report.json alone: one self-contained page (inline CSS, inline SVG charts drawn on the
// server, no script), printable. Every string from the report is escaped; table cells carry data-task,
// data-field and data-value (the JSON number) so tests and scrapers read the same numbers as people.
import { formatValue, groupedBarChart, heatmap } from './charts.ts';
import type { Report, ReportAnalysis, ReportSearch, ReportTaskRow } from './report-types.ts';

/** Escapes text for HTML element content and double-quoted attributes. */
export function escapeHtml(value: unknown): string {
  return String(value)
    .replaceAll('&', '&amp;')
    .replaceAll('<', '&lt;')
    .replaceAll('>', '&gt;')
    .replaceAll('"', '&quot;')
    .replaceAll("'", '&#39;');
}

/** Accuracies as percentages with two decimals; ratios (normalized accuracy) likewise. */
export function formatPercent(value: number | null | undefined): string {
  return value === null || value === undefined || !Number.isFinite(value)
    ? '—'
    : `${(value * 100).toFixed(2)}%`;
}

function formatNumber(value: number | null | undefined, digits = 4): string {
  if (value === null || value === undefined) return '—';
  if (!Number.isFinite(value)) return String(value);
  return Math.abs(value) >= 1e4 || (value !== 0 && Math.abs(value) < 1e-3)
    ? value.toExponential(3)
    : value.toFixed(digits);
}

function cell(
  value: number | null | undefined,
  attrs: Record<string, string>,
  format: (v: number | null | undefined) => string = formatPercent,
): string {
  const data = Object.entries(attrs)
    .map(([k, v]) => ` data-${k}="${escapeHtml(v)}"`)
    .join('');
  const raw = value === null || value === undefined ? '' : ` data-value="${escapeHtml(String(value))}"`;
  return `<td class="num"${data}${raw}>${escapeHtml(format(value))}</td>`;
}

function figure(name: string, caption: string, svg: string): string {
  return `<figure class="chart" data-chart="${escapeHtml(name)}">${svg}<figcaption>${escapeHtml(caption)}</figcaption></figure>`;
}

function section(id: string, title: string, body: string): string {
  return `<section id="${escapeHtml(id)}"><h2>${escapeHtml(title)}</h2>${body}</section>`;
}

function json(value: unknown): string {
  return `<pre>${escapeHtml(JSON.stringify(value, null, 2))}</pre>`;
}

type Split = 'test' | 'validation';

/** One number of a task row, per split: test first (the reported split), validation beside it. */
const TASK_FIELDS: Record<
  Split,
  Array<{ field: string; title: string; value: (r: Report, row: ReportTaskRow) => number | null }>
> = {
  test: [
    { field: 'accuracy', title: 'merged', value: (_, row) => row.accuracy },
    {
      field: 'referenceAccuracy',
      title: 'reference',
      value: (r, row) => row.referenceAccuracy ?? evaluationAccuracy(r, row.reference?.test),
    },
    { field: 'normalizedAccuracy', title: 'normalized', value: (_, row) => row.normalizedAccuracy },
    { field: 'baseAccuracy', title: 'base', value: (r, row) => evaluationAccuracy(r, row.base?.test) },
  ],
  validation: [
    { field: 'validationAccuracy', title: 'merged', value: (_, row) => row.validationAccuracy },
    {
      field: 'referenceValidationAccuracy',
      title: 'reference',
      value: (r, row) => evaluationAccuracy(r, row.reference?.validation),
    },
    {
      field: 'validationNormalizedAccuracy',
      title: 'normalized',
      value: (_, row) => row.validationNormalizedAccuracy,
    },
    {
      field: 'baseValidationAccuracy',
      title: 'base',
      value: (r, row) => evaluationAccuracy(r, row.base?.validation),
    },
  ],
};

const AVERAGE_FIELDS: Record<string, keyof Report['averages']> = {
  accuracy: 'accuracy',
  normalizedAccuracy: 'normalizedAccuracy',
  validationAccuracy: 'validationAccuracy',
  validationNormalizedAccuracy: 'validationNormalizedAccuracy',
};

function evaluationAccuracy(report: Report, key: string | null | undefined): number | null {
  if (!key) return null;
  return report.evaluations.find((e) => e.key === key)?.accuracy ?? null;
}

/** The splits any row has numbers for, test first. */
function splitsShown(report: Report): Split[] {
  return (['test', 'validation'] as const).filter((split) =>
    report.tasks.some((row) => TASK_FIELDS[split].some((c) => c.value(report, row) !== null)),
  );
}

function taskTable(report: Report): string {
  const splits = splitsShown(report);
  const groupHead = splits
    .map((split) => `<th colspan="${TASK_FIELDS[split].length}" scope="colgroup">${split}</th>`)
    .join('');
  const columnHead = splits
    .flatMap((split) => TASK_FIELDS[split].map((c) => `<th>${escapeHtml(c.title)}</th>`))
    .join('');
  const head = `<tr><th rowspan="2">task</th><th rowspan="2">head</th>${groupHead}</tr><tr>${columnHead}</tr>`;
  const rows = report.tasks.map((row) => {
    const cells = splits.flatMap((split) =>
      TASK_FIELDS[split].map(({ field, value }) => cell(value(report, row), { task: row.task, field })),
    );
    return `<tr data-task="${escapeHtml(row.task)}"><th scope="row">${escapeHtml(row.task)}</th><td><code>${escapeHtml(row.head)}</code></td>${cells.join('')}</tr>`;
  });
  const averageCells = splits.flatMap((split) =>
    TASK_FIELDS[split].map(({ field }) => {
      const key = AVERAGE_FIELDS[field];
      return key ? cell(report.averages[key], { task: 'average', field }) : '<td></td>';
    }),
  );
  const average = `<tr class="average" data-task="average"><th scope="row">average</th><td></td>${averageCells.join('')}</tr>`;
  return `<table class="tasks" data-table="tasks"><thead>${head}</thead><tbody>${rows.join('')}${average}</tbody></table>`;
}

async function taskChart(report: Report): Promise<string> {
  const split = splitsShown(report)[0];
  if (!split) return '';
  const [merged, reference, , base] = TASK_FIELDS[split];
  const groups = report.tasks.map((row) => ({
    group: row.task,
    values: [
      { series: 'reference', value: reference.value(report, row) },
      { series: 'merged', value: merged.value(report, row) },
      { series: 'base', value: base.value(report, row) },
    ],
  }));
  const svg = await groupedBarChart({
    title: `Accuracy per task (${split})`,
    yTitle: 'accuracy',
    series: ['reference', 'merged', 'base'],
    groups,
    yDomain: [0, 1],
  });
  return figure(
    'tasks',
    `Per task, on the ${split} split: the individually fine-tuned reference, the merged model, and the base model read through the task's head.`,
    svg,
  );
}

function searchScore(point: ReportSearch['points'][number]): number {
  return point.validation.averageNormalizedAccuracy ?? point.validation.averageAccuracy;
}

async function searchSection(search: ReportSearch): Promise<string> {
  const varying = Object.entries(search.grid).filter(([, values]) => values.length > 1);
  const normalized = search.points.every((p) => p.validation.averageNormalizedAccuracy !== null);
  const metric = normalized ? 'avg. normalized acc. (validation)' : 'avg. accuracy (validation)';
  let chart = '';
  const chosen = search.points[search.chosen];
  if (varying.length === 1 || varying.length === 2) {
    const [xName, xValues] = varying[0];
    const [yName, yValues] = varying[1] ?? ['', [NaN]];
    const values = yValues.map((y) =>
      xValues.map((x) => {
        const point = search.points.find(
          (p) => p.params[xName] === x && (varying.length === 1 || p.params[yName] === y),
        );
        return point ? searchScore(point) : Number.NaN;
      }),
    );
    const svg = await heatmap({
      title: `Search on validation: ${metric}`,
      xTitle: xName,
      yTitle: varying.length === 2 ? yName : '',
      xValues,
      yValues: varying.length === 2 ? yValues : [metric],
      values,
      colorTitle: normalized ? 'norm. acc.' : 'accuracy',
      scheme: 'sequential',
      cellLabels: xValues.length * yValues.length <= 144,
      marked: chosen
        ? {
            row: varying.length === 2 ? yValues.indexOf(chosen.params[yName]) : 0,
            column: xValues.indexOf(chosen.params[xName]),
          }
        : undefined,
    });
    chart = figure(
      'search',
      'The grid searched on the validation split; the outlined cell is the chosen point (test is reported for it only).',
      svg,
    );
  }
  const names = Object.keys(search.grid);
  const rows = search.points.map(
    (p, i) =>
      `<tr${i === search.chosen ? ' class="chosen"' : ''} data-point="${i}">${names
        .map((n) => `<td class="num">${escapeHtml(formatValue(p.params[n]))}</td>`)
        .join('')}${cell(p.validation.averageAccuracy, { point: String(i), field: 'averageAccuracy' })}${cell(
        p.validation.averageNormalizedAccuracy,
        { point: String(i), field: 'averageNormalizedAccuracy' },
      )}<td>${i === search.chosen ? 'chosen' : ''}</td></tr>`,
  );
  const table = `<table data-table="search"><thead><tr>${names.map((n) => `<th>${escapeHtml(n)}</th>`).join('')}<th>avg. acc. (val.)</th><th>avg. normalized (val.)</th><th></th></tr></thead><tbody>${rows.join('')}</tbody></table>`;
  return section('search', 'Search', `<p>Selected on ${escapeHtml(search.selectedOn)}.</p>${chart}${table}`);
}

async function analysisSection(
  analysis: ReportAnalysis,
  id = 'analysis',
  title = 'Task-vector analysis',
): Promise<string> {
  const parts: string[] = [];
  const names = analysis.inputs;
  parts.push(
    `<table data-table="norms"><thead><tr><th>input</th><th>norm of τ (parameters)</th></tr></thead><tbody>${names
      .map(
        (name, i) =>
          `<tr><th scope="row">${escapeHtml(name)}</th>${cell(analysis.norms[i], { input: name, field: 'norm' }, (v) => formatNumber(v))}</tr>`,
      )
      .join('')}</tbody></table>`,
  );
  parts.push(
    `<p>Mean off-diagonal cosine (parameters): <strong data-field="meanOffDiagonalCosine" data-value="${escapeHtml(String(analysis.meanOffDiagonalCosine))}">${escapeHtml(formatNumber(analysis.meanOffDiagonalCosine))}</strong></p>`,
  );
  if (names.length > 1) {
    const spaces: Array<[string, number[][]]> = [['parameters', analysis.cosine.parameters]];
    if (analysis.cosine.delta) spaces.push(['delta', analysis.cosine.delta]);
    for (const [space, matrix] of spaces) {
      const svg = await heatmap({
        title: `Cosine similarity of task vectors (${space} space)`,
        xTitle: '',
        yTitle: '',
        xValues: names,
        yValues: names,
        values: matrix,
        colorTitle: 'cosine',
        colorDomain: [-1, 1],
        scheme: 'diverging',
        rowsUpward: false,
      });
      parts.push(
        figure(
          `cosine-${space}`,
          space === 'delta'
            ? 'Cosine of the LoRA deltas ΔW = s·B·A (Frobenius inner products from the factors).'
            : 'Cosine of the task vectors in parameter space.',
          svg,
        ),
      );
    }
  }
  if (analysis.signConflict.length > 0) {
    const svg = await groupedBarChart({
      title: 'TIES sign-conflict rate per layer',
      yTitle: 'conflict rate',
      series: ['sign conflicts'],
      groups: analysis.signConflict.map((row) => ({
        group: row.layer,
        values: [{ series: 'sign conflicts', value: row.rate }],
      })),
      yDomain: [0, 1],
      width: Math.max(240, Math.min(900, analysis.signConflict.length * 36)),
    });
    parts.push(
      figure(
        'sign-conflicts',
        'Fraction of contested coordinates whose task-vector signs disagree, per layer.',
        svg,
      ),
    );
  }
  if (analysis.effectiveRank && analysis.effectiveRank.length > 0) {
    const modules = [...new Set(analysis.effectiveRank.map((r) => r.module))];
    const inputs = [...new Set(analysis.effectiveRank.map((r) => r.input))];
    if (modules.length <= 64) {
      const values = inputs.map((input) =>
        modules.map((module) => {
          const row = analysis.effectiveRank?.find((r) => r.input === input && r.module === module);
          return row ? row.effectiveRank : Number.NaN;
        }),
      );
      const svg = await heatmap({
        title: 'Effective rank of each LoRA delta',
        xTitle: 'module',
        yTitle: '',
        xValues: modules,
        yValues: inputs,
        values,
        colorTitle: 'eff. rank',
        scheme: 'sequential',
        rowsUpward: false,
        cellLabels: modules.length * inputs.length <= 144,
      });
      parts.push(
        figure(
          'effective-rank',
          'exp of the entropy of the normalized singular values of s·B·A, per module.',
          svg,
        ),
      );
    }
    const rows = analysis.effectiveRank.map(
      (r) =>
        `<tr><td>${escapeHtml(r.input)}</td><td><code>${escapeHtml(r.module)}</code></td><td class="num">${r.rank}</td>${cell(r.effectiveRank, { input: r.input, module: r.module, field: 'effectiveRank' }, (v) => formatNumber(v, 3))}</tr>`,
    );
    parts.push(
      `<details><summary>Effective ranks (${rows.length} modules)</summary><table data-table="effective-rank"><thead><tr><th>input</th><th>module</th><th>rank</th><th>effective rank</th></tr></thead><tbody>${rows.join('')}</tbody></table></details>`,
    );
  }
  if (analysis.disentanglement) {
    const d = analysis.disentanglement;
    const svg = await heatmap({
      title: `Weight disentanglement error ξ(λ₁, λ₂): ${d.tasks[0]} × ${d.tasks[1]}`,
      xTitle: `λ₂ (${d.tasks[1]})`,
      yTitle: `λ₁ (${d.tasks[0]})`,
      xValues: d.grid,
      yValues: d.grid,
      values: d.error,
      colorTitle: 'ξ',
      scheme: 'sequential',
      colorDomain: [0, Math.max(1e-9, ...d.error.flat())],
    });
    parts.push(
      figure(
        'disentanglement',
        'Σₜ the fraction of task t’s examples where θ₀+λ₁τ₁+λ₂τ₂ and θ₀+λₜτₜ disagree; low means the tasks do not interfere.',
        svg,
      ),
    );
  }
  return section(id, title, parts.join(''));
}

function tablesSection(report: Report): string {
  if (!report.tables || report.tables.length === 0) return '';
  return report.tables
    .map((t, index) =>
      section(
        `table-${index}`,
        t.title,
        `<table data-table="extra-${index}"><thead><tr>${t.columns.map((c) => `<th>${escapeHtml(c)}</th>`).join('')}</tr></thead><tbody>${t.rows
          .map(
            (row) =>
              `<tr>${row
                .map((v, c) =>
                  typeof v === 'number'
                    ? cell(v, { column: t.columns[c] ?? String(c) }, (x) => formatNumber(x))
                    : `<td>${escapeHtml(v ?? '—')}</td>`,
                )
                .join('')}</tr>`,
          )
          .join('')}</tbody></table>`,
      ),
    )
    .join('');
}

function evaluationsSection(report: Report): string {
  if (report.evaluations.length === 0) return '';
  const rows = report.evaluations.map(
    (e) =>
      `<tr data-evaluation="${escapeHtml(e.key)}"><td><code>${escapeHtml(e.artifact)}</code></td><td><code>${escapeHtml(e.head)}</code></td><td>${escapeHtml(e.task)}</td><td>${escapeHtml(e.split)}</td><td class="num">${e.examples}</td>${cell(e.accuracy, { evaluation: e.key, field: 'accuracy' })}${cell(e.loss, { evaluation: e.key, field: 'loss' }, (v) => formatNumber(v))}</tr>`,
  );
  return section(
    'evaluations',
    'Evaluations',
    `<p>Every number above is computed from these runs (their predictions are in report.json).</p><table data-table="evaluations"><thead><tr><th>artifact</th><th>head</th><th>task</th><th>split</th><th>examples</th><th>accuracy</th><th>loss</th></tr></thead><tbody>${rows.join('')}</tbody></table>`,
  );
}

function keyValueTable(name: string, values: Record<string, unknown>): string {
  const rows = Object.entries(values).map(
    ([k, v]) =>
      `<tr><th scope="row">${escapeHtml(k)}</th><td>${typeof v === 'number' ? escapeHtml(formatNumber(v)) : escapeHtml(typeof v === 'string' ? v : JSON.stringify(v))}</td></tr>`,
  );
  return `<table data-table="${escapeHtml(name)}"><tbody>${rows.join('')}</tbody></table>`;
}

const STYLE = `
body{font:14px/1.45 Helvetica,Arial,sans-serif;color:#111;margin:2rem auto;max-width:1100px;padding:0 1rem}
h1{font-size:1.6rem;margin:0 0 .25rem}h2{font-size:1.2rem;border-bottom:1px solid #ccc;padding-bottom:.2rem;margin-top:2rem}
.meta{color:#555;font-size:.9rem}.answer{font-size:1.15rem;background:#eef5ff;border-left:4px solid #1f77b4;padding:.6rem .9rem;margin:1rem 0}
table{border-collapse:collapse;margin:.6rem 0;font-size:.9rem}th,td{border:1px solid #ddd;padding:.25rem .5rem;text-align:left;vertical-align:top}
thead th{background:#f4f4f4}td.num{text-align:right;font-variant-numeric:tabular-nums}tr.average{font-weight:bold;background:#fafafa}
tr.chosen{background:#fff4d6;font-weight:bold}figure{margin:1rem 0;break-inside:avoid}figcaption{color:#555;font-size:.85rem;max-width:700px}
pre{background:#f7f7f7;padding:.6rem;overflow:auto;font-size:.8rem;max-height:30rem}code{font-size:.85rem}
@media print{body{margin:0;max-width:none}pre{max-height:none;overflow:visible;white-space:pre-wrap}details{display:block}section{break-inside:auto}}
`;

/** The whole page for one report. */
export async function renderReportHtml(report: Report): Promise<string> {
  const parts: string[] = [];
  const normalized = report.answer.averageNormalizedAccuracy;
  parts.push(
    `<header><h1>${escapeHtml(report.title)}</h1><p class="meta">${escapeHtml(report.kind)} report · ${escapeHtml(report.createdAt)}${report.job ? ` · job <code>${escapeHtml(report.job)}</code>` : ''}</p>`,
    `<p class="answer" data-field="answer">${escapeHtml(report.answer.summary)}${
      normalized !== null
        ? ` <span data-field="averageNormalizedAccuracy" data-value="${escapeHtml(String(normalized))}">(average normalized accuracy ${escapeHtml(formatPercent(normalized))})</span>`
        : ''
    }</p></header>`,
  );
  if (report.tasks.length > 0) {
    parts.push(section('tasks', 'Per task', `${taskTable(report)}${await taskChart(report)}`));
  }
  if (report.search) parts.push(await searchSection(report.search));
  if (report.analysis) parts.push(await analysisSection(report.analysis));
  if (report.learned && Object.keys(report.learned).length > 0) {
    parts.push(section('learned', 'Learned coefficients', keyValueTable('learned', report.learned)));
  }
  parts.push(tablesSection(report));
  for (const [index, entry] of (report.analyses ?? []).entries()) {
    parts.push(await analysisSection(entry.analysis, `analysis-${index}`, entry.title));
  }
  parts.push(evaluationsSection(report));
  parts.push(section('recipe', 'Recipe', report.recipe ? json(report.recipe) : '<p>none</p>'));
  parts.push(section('lineage', 'Lineage', json(report.lineage)));
  if (Object.keys(report.timings).length > 0)
    parts.push(section('timings', 'Timings (s)', keyValueTable('timings', report.timings)));
  if (Object.keys(report.versions).length > 0)
    parts.push(section('versions', 'Versions', keyValueTable('versions', report.versions)));
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<title>${escapeHtml(report.title)}</title><style>${STYLE}</style></head>
<body>${parts.join('\n')}</body></html>
`;
}
