// report.html: a self-contained page rendered from report.json alone (no script, no external resource): the
// one-line answer and the per-task table. The charted page replaces this renderer; its signature stays.
import type { Report } from './report-types.ts';

const escapeHtml = (text: string) =>
  text.replace(
    /[&<>"']/g,
    (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!,
  );

const percent = (value: number | null) => (value === null ? '—' : `${(value * 100).toFixed(2)}%`);

export async function renderReportHtml(report: Report): Promise<string> {
  const rows = report.tasks
    .map(
      (t) =>
        `<tr><th scope="row">${escapeHtml(t.task)}</th><td>${percent(t.accuracy)}</td><td>${percent(t.referenceAccuracy)}</td><td>${percent(t.normalizedAccuracy)}</td><td>${percent(t.validationAccuracy)}</td><td>${percent(t.validationNormalizedAccuracy)}</td></tr>`,
    )
    .join('\n');
  const a = report.averages;
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>${escapeHtml(report.title)}</title>
<style>body{font-family:system-ui,sans-serif;margin:2rem;max-width:60rem}table{border-collapse:collapse}th,td{border:1px solid #ccc;padding:.3rem .6rem;text-align:right}th[scope=row],thead th{text-align:left}</style>
</head><body>
<h1>${escapeHtml(report.title)}</h1>
<p class="answer"><strong>${escapeHtml(report.answer.summary)}</strong></p>
<table class="tasks"><thead><tr><th>task</th><th>accuracy (test)</th><th>reference</th><th>normalized</th><th>accuracy (validation)</th><th>normalized (validation)</th></tr></thead>
<tbody>
${rows}
</tbody>
<tfoot><tr><th scope="row">average</th><td>${percent(a.accuracy)}</td><td></td><td>${percent(a.normalizedAccuracy)}</td><td>${percent(a.validationAccuracy)}</td><td>${percent(a.validationNormalizedAccuracy)}</td></tr></tfoot>
</table>
</body></html>
`;
}
