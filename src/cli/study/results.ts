// What a study leaves behind: results.json (everything measured, with versions, seeds, backend and timings) and
// report.html (the comparison tables, then each mode's cosine matrices and disentanglement heatmap), rendered by
// the same code as every report the service writes.
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { renderReportHtml } from '../../eval/report/render-html.ts';
import type { Report } from '../../eval/report/report-types.ts';
import { VERSION } from '../../version.ts';
import type { StudyInputs } from './inputs.ts';
import type { StudyPlan } from './plan.ts';
import type { AnalysisOutcome, FinetuneOutcome, MergeOutcome } from './runner.ts';
import type { StudyTable } from './table.ts';

export const RESULTS_FILE = 'results.json';
export const REPORT_FILE = 'report.html';

export interface StudyResults {
  schema: 'lorafuse-study/1';
  createdAt: string;
  command: string[];
  preset: string;
  seed: number;
  service: { url: string; embedded: boolean };
  versions: Record<string, string>;
  /** The tfjs backends the fine-tunes ran on, as each artifact's lineage records it. */
  backends: string[];
  settings: Pick<StudyPlan, 'heads' | 'sizes' | 'training' | 'modes' | 'methods' | 'disentanglement'> & {
    search: StudyPlan['preset']['search'];
    lorahub: StudyPlan['preset']['lorahub'];
  };
  inputs: { backbone: string; tasks: StudyInputs['tasks'] };
  table: StudyTable;
  finetunes: FinetuneOutcome[];
  merges: Array<
    Omit<MergeOutcome, 'report'> & {
      averageAccuracy: number | null;
      averageNormalizedAccuracy: number | null;
      tasks: Array<{
        task: string;
        accuracy: number | null;
        referenceAccuracy: number | null;
        normalizedAccuracy: number | null;
      }>;
    }
  >;
  analyses: Array<Omit<AnalysisOutcome, 'report'>>;
  timings: Record<string, number>;
}

export function buildResults(args: {
  plan: StudyPlan;
  argv: string[];
  service: { url: string; embedded: boolean };
  inputs: StudyInputs;
  table: StudyTable;
  finetunes: FinetuneOutcome[];
  merges: MergeOutcome[];
  analyses: AnalysisOutcome[];
  timings: Record<string, number>;
}): StudyResults {
  const { plan } = args;
  return {
    schema: 'lorafuse-study/1',
    createdAt: new Date().toISOString(),
    command: ['lorafuse', 'study', ...args.argv],
    preset: plan.preset.name,
    seed: plan.seed,
    service: args.service,
    versions: { lorafuse: VERSION, node: process.versions.node },
    backends: [...new Set(args.finetunes.map((f) => f.backend ?? 'unknown'))].sort(),
    settings: {
      heads: plan.heads,
      sizes: plan.sizes,
      training: plan.training,
      modes: plan.modes,
      methods: plan.methods,
      disentanglement: plan.disentanglement,
      search: plan.preset.search,
      lorahub: plan.preset.lorahub,
    },
    inputs: { backbone: args.inputs.backbone.id, tasks: args.inputs.tasks },
    table: args.table,
    finetunes: args.finetunes,
    merges: args.merges.map(({ report, ...merge }) => ({
      ...merge,
      averageAccuracy: report?.averages.accuracy ?? null,
      averageNormalizedAccuracy: report?.averages.normalizedAccuracy ?? null,
      tasks: (report?.tasks ?? []).map((row) => ({
        task: row.task,
        accuracy: row.accuracy,
        referenceAccuracy: row.referenceAccuracy,
        normalizedAccuracy: row.normalizedAccuracy,
      })),
    })),
    analyses: args.analyses.map(({ report: _report, ...analysis }) => analysis),
    timings: args.timings,
  };
}

const MODE_NAMES: Record<string, string> = { full: 'full fine-tuning', lora: 'LoRA', llora: 'L-LoRA' };

/** The study as a report.json of kind `study`: the tables, the per-mode analyses, no single merged artifact. */
export function studyReport(results: StudyResults, analyses: AnalysisOutcome[]): Report {
  const { table } = results;
  const modes = table.modes;
  const numeric = (index: 0 | 1) =>
    table.rows.map((row) => [row.label, ...modes.map((mode) => row.cells[mode]?.[index] ?? null)]);
  const ta = table.rows.find((r) => r.method === 'task_arithmetic' && r.space !== 'delta');
  const taNorm = (mode: string) => ta?.cells[mode]?.[1] ?? null;
  const summary =
    taNorm('lora') !== null && taNorm('llora') !== null
      ? `Task arithmetic, average normalized test accuracy: L-LoRA ${(100 * taNorm('llora')!).toFixed(1)}% vs LoRA ${(100 * taNorm('lora')!).toFixed(1)}% (${results.inputs.tasks.length} tasks, preset ${results.preset}, seed ${results.seed}).`
      : `Study over ${results.inputs.tasks.length} tasks (preset ${results.preset}, seed ${results.seed}).`;
  const tasks = results.inputs.tasks.map((t) => t.name);
  return {
    schemaVersion: 1,
    kind: 'study',
    title: `lorafuse study (${results.preset}): merging ${tasks.length} tasks fine-tuned with ${modes.map((m) => MODE_NAMES[m]).join(', ')}`,
    createdAt: results.createdAt,
    job: null,
    answer: { summary, artifact: null, method: null, params: null, averageNormalizedAccuracy: null },
    tasks: [],
    averages: {
      accuracy: null,
      normalizedAccuracy: null,
      validationAccuracy: null,
      validationNormalizedAccuracy: null,
    },
    evaluations: [],
    tables: [
      {
        title: 'Average absolute test accuracy (rows: merge method; columns: fine-tuning mode)',
        columns: ['method', ...modes],
        rows: numeric(0),
      },
      {
        title: 'Average normalized test accuracy (merged ÷ individual, per task, averaged)',
        columns: ['method', ...modes],
        rows: numeric(1),
      },
      {
        title:
          'Individual test accuracy per task (the references), and the pre-trained backbone through each task head',
        columns: ['task', 'pre-trained', ...modes],
        rows: tasks.map((task) => [
          task,
          table.pretrained[task],
          ...modes.map((m) => table.individual[m]?.[task] ?? null),
        ]),
      },
      {
        title: 'Mean off-diagonal cosine of the task vectors, and mean disentanglement error ξ',
        columns: ['mode', 'cosine (parameters)', 'cosine (ΔW)', 'mean ξ'],
        rows: modes.map((m) => [
          m,
          table.cosine[m].parameters,
          table.cosine[m].delta,
          table.cosine[m].disentanglement,
        ]),
      },
      {
        title: 'Merge jobs (λ and density chosen on validation by the service’s search)',
        columns: ['mode', 'method', 'space', 'job', 'chosen', 'seconds'],
        rows: results.merges.map((m) => [
          m.mode,
          m.method,
          m.space ?? '—',
          m.job,
          m.error ??
            (m.chosen
              ? Object.entries(m.chosen)
                  .map(([k, v]) => `${k}=${v}`)
                  .join(', ')
              : '—'),
          m.seconds,
        ]),
      },
    ],
    analyses: analyses
      .filter((a) => a.report?.analysis)
      .map((a) => ({
        title: `Task vectors of the ${MODE_NAMES[a.mode]} fine-tunes`,
        analysis: a.report!.analysis!,
      })),
    recipe: { command: results.command, settings: results.settings },
    lineage: { backbone: results.inputs.backbone, tasks: results.inputs.tasks },
    timings: results.timings,
    versions: results.versions,
  };
}

export async function writeStudyOutputs(outDir: string, results: StudyResults, analyses: AnalysisOutcome[]) {
  await mkdir(outDir, { recursive: true });
  const resultsFile = path.join(outDir, RESULTS_FILE);
  await writeFile(resultsFile, `${JSON.stringify(results, null, 2)}\n`);
  const reportFile = path.join(outDir, REPORT_FILE);
  await writeFile(reportFile, await renderReportHtml(studyReport(results, analyses)));
  return { resultsFile, reportFile };
}
