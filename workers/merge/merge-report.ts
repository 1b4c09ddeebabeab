// The evaluation half of an evaluated merge: the per-task heads kept beside the merged weights (before ingest),
// then, once the merged artifact exists, its evaluations, the task-vector analysis of its inputs (with the
// weight disentanglement of two tasks), report.json + report.html, and the report artifact.
import { mkdir, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { RuntimeSettings } from '../../src/config.ts';
import { weightDisentanglement } from '../../src/eval/analysis/disentanglement.ts';
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
import { openStoredTaskPair, type StoredTask } from '../analyze/stored-task-pair.ts';
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
  /** The runtime the disentanglement grid runs on (LORAFUSE_BACKEND, from src/config.ts). */
  runtime?: RuntimeSettings;
}

/** What the report says of the inputs' task vectors: the analysis (and what of it was left out and why). */
type InputAnalysis = { analysis: ReportAnalysis; omitted?: string } | { omitted: string };

interface MergeAnalysisOptions {
  signal?: AbortSignal;
  runtime?: RuntimeSettings;
  /** A scratch folder for the disentanglement's linked inputs (removed here). */
  workDir?: string;
  timings?: Record<string, number>;
}

/**
 * The task-vector analysis of the merge's inputs against its base (as POST /v1/analyses computes it), the
 * inputs named by their tasks. A merge without a base model has no task vectors; an analysis that fails is
 * reported as left out rather than failing a merge that is already stored and evaluated.
 */
export async function analyzeMergeInputs(
  store: ArtifactStore,
  data: MergeJobPayload,
  options: MergeAnalysisOptions = {},
): Promise<InputAnalysis> {
  const { signal } = options;
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
    await inputs.closeAll();
    const spec = data.evaluation?.disentanglement;
    if (!spec) return { analysis: reportAnalysis(analysis, names) };
    const xi = await disentangleTasks(store, { baseModel, kind, artifacts, names, data, spec }, options);
    if ('omitted' in xi) return { analysis: reportAnalysis(analysis, names), omitted: xi.omitted };
    return { analysis: reportAnalysis(analysis, names, xi) };
  } catch (error) {
    if (signal?.aborted) throw error;
    return { omitted: `the analysis failed: ${(error as Error).message}` };
  } finally {
    await inputs.closeAll();
  }
}

/**
 * ξ(λ₁, λ₂) of the two tasks the request chose, on the first examples of their validation splits, each read
 * through its task's head: the inputs, heads, grid and examples POST /v1/analyses would be given, and the same
 * code (stored-task-pair.ts, weightDisentanglement). A failure leaves ξ out of the report, not the merge.
 */
async function disentangleTasks(
  store: ArtifactStore,
  inputs: {
    baseModel: string;
    kind: 'adapter' | 'model';
    artifacts: string[];
    names: string[];
    data: MergeJobPayload;
    spec: NonNullable<NonNullable<MergeJobPayload['evaluation']>['disentanglement']>;
  },
  options: MergeAnalysisOptions,
): Promise<NonNullable<ReportAnalysis['disentanglement']> | { omitted: string }> {
  const { spec, data } = inputs;
  const tasks = spec.tasks.map((index) => data.evaluation!.tasks[index]);
  const workDir = options.workDir ?? path.join(store.dataDir, 'tmp', `xi-${Date.now()}-${process.pid}`);
  const started = Date.now();
  let opened: Awaited<ReturnType<typeof openStoredTaskPair>> | undefined;
  try {
    opened = await openStoredTaskPair(
      store,
      {
        baseModel: inputs.baseModel,
        kind: inputs.kind,
        tasks: spec.tasks.map((index, i) => ({
          artifact: inputs.artifacts[index],
          head: tasks[i].head,
          dataset: tasks[i].validation,
        })) as [StoredTask, StoredTask],
        maxExamples: spec.maxExamples,
      },
      { workDir, runtime: options.runtime },
    );
    const result = await weightDisentanglement({
      model: opened.model,
      pair: opened.pair,
      datasets: opened.datasets,
      grid: spec.grid,
      onRow: () => options.signal?.throwIfAborted(),
    });
    if (options.timings) {
      options.timings.disentanglementMs = Date.now() - started;
      options.timings.disentanglementForwardPasses = result.forwardPasses;
    }
    return {
      tasks: [inputs.names[spec.tasks[0]], inputs.names[spec.tasks[1]]],
      grid: result.grid,
      error: result.error,
    };
  } catch (error) {
    if (options.signal?.aborted) throw error;
    return { omitted: `the weight disentanglement failed: ${(error as Error).message}` };
  } finally {
    opened?.dispose();
    await rm(workDir, { recursive: true, force: true });
  }
}

/** Builds the report from the evaluations, renders it, and stores both files as one `report` artifact. */
export async function writeReport(
  input: WriteReportInput,
): Promise<{ report: Report; record: ArtifactRecord }> {
  const evaluation = input.data.evaluation!;
  const recipe = input.data.recipe;
  const analysisFrom = Date.now();
  const analysisTimings: Record<string, number> = {};
  const inputAnalysis = await analyzeMergeInputs(input.store, input.data, {
    signal: input.signal,
    runtime: input.runtime,
    workDir: `${input.dir}-disentanglement`,
    timings: analysisTimings,
  });
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
    timings: { ...input.timings, analysisMs, ...analysisTimings },
    versions: { lorafuse: LORAFUSE_VERSION, node: process.version },
  });
  if (inputAnalysis.omitted) {
    const what = 'analysis' in inputAnalysis ? 'Weight disentanglement' : 'Task-vector analysis';
    report.tables = [
      ...(report.tables ?? []),
      { title: `${what} left out`, columns: ['why'], rows: [[inputAnalysis.omitted]] },
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
