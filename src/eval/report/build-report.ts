// Builds report.json (report-types.ts) from the raw evaluations alone: per task the merged, reference and base
// accuracies, normalized accuracy = merged ÷ reference, and the averages. Nothing here runs a model, so the
// numbers are reproducible from the recorded predictions and the datasets' labels.
import type {
  Report,
  ReportAnalysis,
  ReportEvaluation,
  ReportSearch,
  ReportTaskRow,
} from './report-types.ts';

export interface ReportTask {
  name: string;
  head: string;
  validation: string;
  test: string;
  reference: string | null;
}

export interface BuildReportInput {
  kind: Report['kind'];
  title: string;
  job: string | null;
  /** The merged artifact the task rows describe (the chosen point's, for a search). */
  artifact: string;
  method: string | null;
  params: Record<string, number> | null;
  tasks: ReportTask[];
  /** The base model read through each task's head; null where no base row is meaningful. */
  baseModel: string | null;
  evaluations: ReportEvaluation[];
  search?: ReportSearch;
  /** What a data-driven method learned (its weights or coefficients). */
  learned?: Record<string, unknown>;
  /** The task-vector analysis of the merge's inputs (norms, cosine matrices, sign conflicts, effective ranks). */
  analysis?: ReportAnalysis;
  recipe: Record<string, unknown> | null;
  lineage: Record<string, unknown>;
  timings: Record<string, number>;
  versions: Record<string, string>;
  createdAt?: string;
}

const key = (artifact: string, head: string, dataset: string) => `${artifact}|${head}|${dataset}`;

function mean(values: Array<number | null>): number | null {
  const present = values.filter((v): v is number => v !== null);
  return present.length === 0 ? null : present.reduce((a, b) => a + b, 0) / present.length;
}

function ratio(merged: number | null, reference: number | null): number | null {
  return merged === null || reference === null || reference === 0 ? null : merged / reference;
}

export function buildReport(input: BuildReportInput): Report {
  const byKey = new Map(input.evaluations.map((e) => [e.key, e]));
  const found = (artifact: string, head: string, dataset: string) =>
    byKey.has(key(artifact, head, dataset)) ? key(artifact, head, dataset) : null;
  const accuracyOf = (k: string | null) => (k === null ? null : (byKey.get(k)?.accuracy ?? null));
  const tasks: ReportTaskRow[] = input.tasks.map((task) => {
    const merged = {
      validation: found(input.artifact, task.head, task.validation),
      test: found(input.artifact, task.head, task.test),
    };
    const reference = task.reference
      ? {
          artifact: task.reference,
          validation: found(task.reference, task.head, task.validation),
          test: found(task.reference, task.head, task.test),
        }
      : null;
    const base = input.baseModel
      ? {
          validation: found(input.baseModel, task.head, task.validation),
          test: found(input.baseModel, task.head, task.test),
        }
      : null;
    const accuracy = accuracyOf(merged.test);
    const referenceAccuracy = accuracyOf(reference?.test ?? null);
    const validationAccuracy = accuracyOf(merged.validation);
    return {
      task: task.name,
      head: task.head,
      merged,
      reference,
      base: base && (base.validation || base.test) ? base : null,
      accuracy,
      referenceAccuracy,
      normalizedAccuracy: ratio(accuracy, referenceAccuracy),
      validationAccuracy,
      validationNormalizedAccuracy: ratio(validationAccuracy, accuracyOf(reference?.validation ?? null)),
    };
  });
  const averages = {
    accuracy: mean(tasks.map((t) => t.accuracy)),
    normalizedAccuracy: mean(tasks.map((t) => t.normalizedAccuracy)),
    validationAccuracy: mean(tasks.map((t) => t.validationAccuracy)),
    validationNormalizedAccuracy: mean(tasks.map((t) => t.validationNormalizedAccuracy)),
  };
  const what = input.params
    ? `${input.method} at ${Object.entries(input.params)
        .map(([name, value]) => `${name}=${value}`)
        .join(', ')}`
    : (input.method ?? 'the merge');
  const headline =
    averages.normalizedAccuracy !== null
      ? `average normalized test accuracy ${(averages.normalizedAccuracy * 100).toFixed(1)}%`
      : averages.accuracy !== null
        ? `average test accuracy ${(averages.accuracy * 100).toFixed(1)}%`
        : 'no test accuracy measured';
  return {
    schemaVersion: 1,
    kind: input.kind,
    title: input.title,
    createdAt: input.createdAt ?? new Date().toISOString(),
    job: input.job,
    answer: {
      summary: `Ship ${input.artifact} (${what}): ${headline} over ${tasks.length} task${tasks.length === 1 ? '' : 's'}${input.search ? `, chosen on validation among ${input.search.points.length} grid points` : ''}.`,
      artifact: input.artifact,
      method: input.method,
      params: input.params,
      averageNormalizedAccuracy: averages.normalizedAccuracy,
    },
    tasks,
    averages,
    evaluations: input.evaluations,
    ...(input.search ? { search: input.search } : {}),
    ...(input.analysis ? { analysis: input.analysis } : {}),
    ...(input.learned ? { learned: input.learned } : {}),
    recipe: input.recipe,
    lineage: input.lineage,
    timings: input.timings,
    versions: input.versions,
  };
}
