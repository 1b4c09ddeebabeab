// The evaluation half of an evaluated merge: the per-task heads kept beside the merged weights (before ingest),
// then, once the merged artifact exists, its evaluations, the task-vector analysis of its inputs,
// report.json + report.html, and the report artifact.
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { writeTaskHeads } from '../../src/eval/heads.ts';
import { reportAnalysis } from '../../src/eval/report/analysis-report.ts';
import { buildReport } from '../../src/eval/report/build-report.ts';
import { renderReportHtml } from '../../src/eval/report/render-html.ts';
import type {
  Report,
  ReportAnalysis,
  ReportEvaluation,
  ReportSearch,
} from '../../src/eval/report/report-types.ts';
import { parseRecipe } from '../../src/merge/index.ts';
import type { ArtifactRef, EvaluationTask, MergeJobPayload } from '../../src/queue/index.ts';
import {
  ArtifactInputs,
  type ArtifactRecord,
  type ArtifactStore,
  kindOfId,
  LORAFUSE_VERSION,
  type Publication,
  REPORT_HTML,
  REPORT_JSON,
  TASK_HEADS_FILE,
} from '../../src/store/index.ts';
import { analyzeStoredInputs } from '../analyze/analyze-stored.ts';
import { resolveHead } from '../resolve-head.ts';

/**
 * Writes lorafuse_heads.safetensors into the merged folder: each task's head under the task's name, so the merged
 * artifact carries what every task needs to be read (heads are never averaged across tasks).
 */
export async function keepTaskHeads(
  store: ArtifactStore,
  outDir: string,
  tasks: EvaluationTask[],
  scratch: string,
): Promise<void> {
  const heads = [];
  let folders = 0;
  const linked = (r: ArtifactRecord) => store.linkFolder(r, path.join(scratch, `head-${folders++}`));
  for (const task of tasks) {
    const head = await resolveHead(store, task.head, linked);
    if (head) heads.push({ task: task.name, head });
  }
  if (heads.length > 0) await writeTaskHeads(path.join(outDir, TASK_HEADS_FILE), heads);
}

export interface WriteReportInput {
  store: ArtifactStore;
  dir: string;
  jobId: string;
  data: MergeJobPayload;
  merged: ArtifactRef;
  evaluations: ReportEvaluation[];
  params: Record<string, number> | null;
  search?: ReportSearch;
  /** What a data-driven method learned, for the report's `learned` section. */
  learned?: Record<string, unknown>;
  timings: Record<string, number>;
  /** Artifacts the report was made from, besides the job's inputs. */
  extraParents?: string[];
  /** Stops the task-vector analysis between tensors (a cancel or a shutdown). */
  signal?: AbortSignal;
  /** The job's report slot: one report per job, stored only while the attempt holds the job. */
  publication?: Publication;
}

/** What the report says of the inputs' task vectors: the analysis, or why there is none. */
type InputAnalysis = { analysis: ReportAnalysis } | { omitted: string };

/**
 * The task-vector analysis of the merge's inputs against its base (as POST /v1/analyses computes it), the
 * inputs named by their tasks. A merge without a base model has no task vectors; an analysis that fails is
 * reported as left out rather than failing a merge that is already stored and evaluated.
 */
export async function analyzeMergeInputs(
  store: ArtifactStore,
  data: MergeJobPayload,
  signal?: AbortSignal,
): Promise<InputAnalysis> {
  const recipe = parseRecipe(data.recipe, { maxModels: Number.POSITIVE_INFINITY });
  const baseModel = recipe.base_model ?? data.evaluation?.baseModel ?? null;
  if (!baseModel) return { omitted: 'the merge has no base model, so its inputs have no task vectors' };
  const kind = recipe.models.every((m) => m.adapter !== undefined) ? 'adapter' : 'model';
  const artifacts = recipe.models.map((m) => (m.adapter ?? m.model)!);
  if (artifacts.includes(baseModel)) return { omitted: 'the base model is also one of the inputs' };
  const names = artifacts.map((id, i) => data.evaluation?.tasks[i]?.name ?? id);
  const inputs = new ArtifactInputs(store);
  const onStep = () => signal?.throwIfAborted();
  try {
    const analysis = await analyzeStoredInputs(inputs, { baseModel, kind, artifacts, onStep });
    return { analysis: reportAnalysis(analysis, names) };
  } catch (error) {
    if (signal?.aborted) throw error;
    return { omitted: `the analysis failed: ${(error as Error).message}` };
  } finally {
    await inputs.closeAll();
  }
}

/** Builds the report from the evaluations, renders it, and stores both files as one `report` artifact. */
export async function writeReport(
  input: WriteReportInput,
): Promise<{ report: Report; record: ArtifactRecord }> {
  const evaluation = input.data.evaluation!;
  const recipe = input.data.recipe;
  const analysisFrom = Date.now();
  const inputAnalysis = await analyzeMergeInputs(input.store, input.data, input.signal);
  const analysisMs = Date.now() - analysisFrom;
  const method = typeof recipe.merge_method === 'string' ? recipe.merge_method : null;
  const report = buildReport({
    kind: input.search ? 'search' : 'merge',
    title: input.search
      ? `Search over ${Object.keys(input.search.grid).join(' × ')} (${method})`
      : `Merge evaluation (${method})`,
    job: input.jobId,
    artifact: input.merged.id,
    method,
    params: input.params,
    tasks: evaluation.tasks,
    baseModel: evaluation.baseModel,
    evaluations: input.evaluations,
    search: input.search,
    learned: input.learned,
    ...('analysis' in inputAnalysis ? { analysis: inputAnalysis.analysis } : {}),
    recipe,
    lineage: {
      inputs: input.data.inputs,
      merged: input.merged,
      tasks: evaluation.tasks.map((t) => ({ name: t.name, head: t.head, reference: t.reference })),
    },
    timings: { ...input.timings, analysisMs },
    versions: { lorafuse: LORAFUSE_VERSION, node: process.version },
  });
  if ('omitted' in inputAnalysis) {
    report.tables = [
      ...(report.tables ?? []),
      { title: 'Task-vector analysis left out', columns: ['why'], rows: [[inputAnalysis.omitted]] },
    ];
  }
  await mkdir(input.dir, { recursive: true });
  await writeFile(path.join(input.dir, REPORT_JSON), `${JSON.stringify(report, null, 2)}\n`);
  await writeFile(path.join(input.dir, REPORT_HTML), await renderReportHtml(report));
  const parents = [input.merged.id, ...input.data.inputs, ...(input.extraParents ?? [])];
  for (const task of evaluation.tasks) parents.push(task.validation, task.test);
  const record = await input.store.ingestDirectory(
    'report',
    input.dir,
    {
      parents: [...new Set(parents)].map((id) => ({ kind: kindOfId(id) ?? 'unknown', id })),
      recipe,
      jobId: input.jobId,
      lorafuseVersion: LORAFUSE_VERSION,
    },
    { publication: input.publication },
  );
  return { report, record };
}
