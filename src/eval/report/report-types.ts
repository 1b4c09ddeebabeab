// The shape of report.json, the one document behind every report (merge evaluation, search, analysis):
// jobs write it, report.html is rendered from it alone, and GET /v1/jobs/{id}/report returns it.
// Every accuracy in it is reproducible from the `evaluations` it records (predictions + labels' dataset id).

/** One model (artifact, read through one head) run over one dataset: the raw material of every number. */
export interface ReportEvaluation {
  /** Stable key `${artifact}|${head}|${dataset}`: what the evaluation cache is keyed by. */
  key: string;
  /** The artifact evaluated: a model or adapter id, or `merged` for the job's own (candidate) output. */
  artifact: string;
  /** How the body is read: `adapter:<id>` (that adapter's modules_to_save head), `head:<id>` (a stored head), `model` (the model's own classifier). */
  head: string;
  dataset: string;
  task: string;
  split: 'validation' | 'test' | 'train';
  examples: number;
  accuracy: number;
  /** Mean cross-entropy. */
  loss: number;
  /** Argmax class per example, in dataset order. */
  predictions: number[];
}

export interface ReportTaskRow {
  task: string;
  head: string;
  /** The merged artifact on this task (keys into `evaluations`). */
  merged: { validation: string | null; test: string | null };
  /** The individually fine-tuned reference on this task (same mode); null when none was given or derivable. */
  reference: { artifact: string; validation: string | null; test: string | null } | null;
  /** The base model read through this task's head, where that is meaningful. */
  base: { validation: string | null; test: string | null } | null;
  /** Denormalized for readers: merged test accuracy, reference test accuracy, their ratio. */
  accuracy: number | null;
  referenceAccuracy: number | null;
  normalizedAccuracy: number | null;
  validationAccuracy: number | null;
  validationNormalizedAccuracy: number | null;
}

export interface ReportSearchPoint {
  /** The parameter values of this grid point (e.g. {lambda: 0.5, density: 0.2}). */
  params: Record<string, number>;
  /** Child job that merged and evaluated this point. */
  job: string | null;
  /** Artifact, kept only with `keep: all` (and for the chosen point). */
  artifact: string | null;
  validation: { averageAccuracy: number; averageNormalizedAccuracy: number | null };
}

export interface ReportSearch {
  /** The grid as requested: parameter → values. */
  grid: Record<string, number[]>;
  points: ReportSearchPoint[];
  /** Index into `points` of the chosen point (best average normalized validation accuracy). */
  chosen: number;
  selectedOn: 'validation';
}

export interface ReportAnalysis {
  /** Input names in matrix order (artifact ids, or task names when known). */
  inputs: string[];
  norms: number[];
  cosine: { parameters: number[][]; delta?: number[][] };
  /** Mean off-diagonal cosine of the parameter-space matrix. */
  meanOffDiagonalCosine: number;
  /** TIES sign-conflict rate per layer (fraction of coordinates where the inputs' signs disagree). */
  signConflict: Array<{ layer: string; rate: number }>;
  /** Effective rank (exp of the entropy of normalized singular values) of each adapter's ΔW per module. */
  effectiveRank?: Array<{ input: string; module: string; rank: number; effectiveRank: number }>;
  disentanglement?: {
    tasks: [string, string];
    grid: number[];
    /** error[i][j] = ξ(grid[i], grid[j]). */
    error: number[][];
  };
}

export interface Report {
  schemaVersion: 1;
  kind: 'merge' | 'search' | 'analysis' | 'study';
  title: string;
  createdAt: string;
  /** The job that wrote it. */
  job: string | null;
  /** The one-line answer: which point or method to ship and its average normalized accuracy. */
  answer: {
    summary: string;
    artifact: string | null;
    method: string | null;
    params: Record<string, number> | null;
    averageNormalizedAccuracy: number | null;
  };
  tasks: ReportTaskRow[];
  averages: {
    accuracy: number | null;
    normalizedAccuracy: number | null;
    validationAccuracy: number | null;
    validationNormalizedAccuracy: number | null;
  };
  evaluations: ReportEvaluation[];
  search?: ReportSearch;
  analysis?: ReportAnalysis;
  /** Several analyses side by side (a study: one per fine-tuning mode), each under its title. */
  analyses?: Array<{ title: string; analysis: ReportAnalysis }>;
  /** What a data-driven method learned (AdaMerging coefficients, LoraHub weights), as it reports it. */
  learned?: Record<string, unknown>;
  /** Free-form sections (a study's comparison table, say): rows of named cells. */
  tables?: Array<{ title: string; columns: string[]; rows: Array<Array<string | number | null>> }>;
  recipe: Record<string, unknown> | null;
  lineage: Record<string, unknown>;
  timings: Record<string, number>;
  versions: Record<string, string>;
}
