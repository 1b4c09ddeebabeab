// Assembles report.json for an analysis job from what it measured: the task-vector statistics, the
// disentanglement grid, and (when tasks are named) the evaluations behind the per-task table, where
// "merged" is task arithmetic at λ₁ = λ₂ = 1, "reference" one task vector alone and "base" θ₀ with the task's head.
import type { CheckpointAnalysis } from '../analysis/analyze-checkpoints.ts';
import type { Report, ReportAnalysis, ReportEvaluation, ReportTaskRow } from './report-types.ts';

export interface AnalysisTaskEvaluations {
  task: string;
  head: string;
  reference: string;
  split: 'validation' | 'test' | 'train';
  merged: ReportEvaluation;
  referenceEvaluation: ReportEvaluation;
  base: ReportEvaluation;
}

function mean(values: number[]): number | null {
  return values.length === 0 ? null : values.reduce((a, b) => a + b, 0) / values.length;
}

function taskRow(t: AnalysisTaskEvaluations): ReportTaskRow {
  const at = (e: ReportEvaluation) => ({
    validation: t.split === 'validation' ? e.key : null,
    test: t.split === 'test' ? e.key : null,
  });
  const normalized =
    t.referenceEvaluation.accuracy > 0 ? t.merged.accuracy / t.referenceEvaluation.accuracy : null;
  const onTest = t.split === 'test';
  return {
    task: t.task,
    head: t.head,
    merged: at(t.merged),
    reference: { artifact: t.reference, ...at(t.referenceEvaluation) },
    base: at(t.base),
    accuracy: onTest ? t.merged.accuracy : null,
    referenceAccuracy: onTest ? t.referenceEvaluation.accuracy : null,
    normalizedAccuracy: onTest ? normalized : null,
    validationAccuracy: onTest ? null : t.merged.accuracy,
    validationNormalizedAccuracy: onTest ? null : normalized,
  };
}

export function buildAnalysisReport(args: {
  job: string | null;
  kind: 'adapter' | 'model';
  baseModel: string;
  names: string[];
  analysis: CheckpointAnalysis;
  disentanglement: { tasks: [string, string]; grid: number[]; error: number[][] } | null;
  tasks: AnalysisTaskEvaluations[];
  recipe: Record<string, unknown>;
  lineage: Record<string, unknown>;
  timings: Record<string, number>;
  versions: Record<string, string>;
  createdAt?: Date;
}): Report {
  const { analysis } = args;
  const tasks = args.tasks.map(taskRow);
  const fmt = (x: number) => x.toFixed(3);
  const conflicts = analysis.parameters.signConflict;
  const contested = conflicts.reduce((s, r) => s + r.contested, 0);
  const overallConflict = contested === 0 ? 0 : conflicts.reduce((s, r) => s + r.conflicts, 0) / contested;
  const meanXi = args.disentanglement ? mean(args.disentanglement.error.flat()) : null;
  const summaryParts = [
    `${args.names.length} ${args.kind}s on ${args.baseModel}: mean off-diagonal cosine ${fmt(analysis.parameters.meanOffDiagonalCosine)} (parameters)`,
  ];
  if (analysis.delta) summaryParts.push(`${fmt(analysis.delta.meanOffDiagonalCosine)} (ΔW)`);
  summaryParts.push(`sign conflicts ${(overallConflict * 100).toFixed(1)}% of contested coordinates`);
  if (meanXi !== null && args.disentanglement) {
    summaryParts.push(
      `mean disentanglement error ${fmt(meanXi)} over ${args.disentanglement.grid.length}×${args.disentanglement.grid.length} (λ₁, λ₂)`,
    );
  }
  const normalizedValues = tasks
    .map((t) => t.normalizedAccuracy ?? t.validationNormalizedAccuracy)
    .filter((v): v is number => v !== null);
  const evaluations = args.tasks.flatMap((t) => [t.merged, t.referenceEvaluation, t.base]);
  return {
    schemaVersion: 1,
    kind: 'analysis',
    title: `Task-vector analysis of ${args.names.join(', ')}`,
    createdAt: (args.createdAt ?? new Date()).toISOString(),
    job: args.job,
    answer: {
      summary: `${summaryParts.join('; ')}.`,
      artifact: null,
      method: args.tasks.length > 0 ? 'task_arithmetic' : null,
      params: args.tasks.length > 0 ? { lambda1: 1, lambda2: 1 } : null,
      averageNormalizedAccuracy: mean(normalizedValues),
    },
    tasks,
    averages: {
      accuracy: mean(tasks.map((t) => t.accuracy).filter((v): v is number => v !== null)),
      normalizedAccuracy: mean(tasks.map((t) => t.normalizedAccuracy).filter((v): v is number => v !== null)),
      validationAccuracy: mean(tasks.map((t) => t.validationAccuracy).filter((v): v is number => v !== null)),
      validationNormalizedAccuracy: mean(
        tasks.map((t) => t.validationNormalizedAccuracy).filter((v): v is number => v !== null),
      ),
    },
    evaluations,
    analysis: reportAnalysis(analysis, args.names, args.disentanglement),
    tables: [
      {
        title: 'Task vectors',
        columns: ['input', 'artifact', '‖τ‖ parameters', ...(analysis.delta ? ['‖ΔW‖_F'] : [])],
        rows: args.names.map((name, i) => [
          name,
          analysis.inputs[i],
          analysis.parameters.norms[i],
          ...(analysis.delta ? [analysis.delta.norms[i]] : []),
        ]),
      },
      ...(analysis.skipped.length > 0
        ? [
            {
              title: 'Tensors left out of the analysis',
              columns: ['tensor', 'why'],
              rows: analysis.skipped.map((s) => [s.tensor, s.reason]),
            },
          ]
        : []),
    ],
    recipe: args.recipe,
    lineage: args.lineage,
    timings: args.timings,
    versions: args.versions,
  };
}

/**
 * The report's `analysis` section from what analyzeAdapters/analyzeModels measured, the inputs shown under
 * `names` (task names, else ids): shared by analysis reports and the reports of evaluated merges and searches.
 */
export function reportAnalysis(
  analysis: CheckpointAnalysis,
  names: string[],
  disentanglement: ReportAnalysis['disentanglement'] | null = null,
): ReportAnalysis {
  return {
    inputs: names,
    norms: analysis.parameters.norms,
    cosine: {
      parameters: analysis.parameters.cosine,
      ...(analysis.delta ? { delta: analysis.delta.cosine } : {}),
    },
    meanOffDiagonalCosine: analysis.parameters.meanOffDiagonalCosine,
    signConflict: analysis.parameters.signConflict.map(({ layer, rate }) => ({ layer, rate })),
    ...(analysis.effectiveRank
      ? {
          effectiveRank: analysis.effectiveRank.map((r) => ({
            input: names[analysis.inputs.indexOf(r.input)] ?? r.input,
            module: r.module,
            rank: r.rank,
            effectiveRank: r.effectiveRank,
          })),
        }
      : {}),
    ...(disentanglement ? { disentanglement } : {}),
  };
}
