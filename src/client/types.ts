// What the lorafuse API sends and takes, as TypeScript types for dashboards and pipelines. Written to
// match openapi.yaml; test/client/openapi-contract.test.ts fails when a field or its optionality drifts.

export type ArtifactKind = 'model' | 'adapter' | 'dataset' | 'head';
export type JobState = 'queued' | 'active' | 'completed' | 'failed' | 'cancelled';
export type JobType = 'merge' | 'finetune' | 'evaluate';

/** RFC 9457 problem details: every error the API answers with. */
export interface Problem {
  /** A stable URI per kind of error, e.g. https://lorafuse.dev/problems/invalid-recipe. */
  type: string;
  title: string;
  status: number;
  detail?: string;
  instance?: string;
  [extension: string]: unknown;
}

export interface ArtifactFile {
  name: string;
  size: number;
  sha256: string;
}

export interface Lineage {
  parents: Array<{ kind: string; id: string }>;
  recipe?: Record<string, unknown>;
  jobId?: string;
  lorafuseVersion: string;
  training?: Record<string, unknown>;
}

export interface Artifact {
  /** mdl_... for models, adp_... for adapters, dst_... for datasets. */
  id: string;
  kind: ArtifactKind;
  /** The project it belongs to (that of the key that uploaded or made it). */
  project?: string;
  files: ArtifactFile[];
  tensorCount: number;
  parameterCount: number;
  dtypes: string[];
  createdAt: string;
  lineage: Lineage | null;
  /** sha256 of the file manifest (one "<sha256>  <name>\n" line per file, sorted by name). */
  digest?: string;
  rank?: number;
  targets?: string[];
  baseModel?: string | null;
  config?: Record<string, unknown>;
  examples?: number;
  split?: 'train' | 'validation' | 'test';
  task?: string;
  classes?: string[];
  inputs?: Array<{ name: string; dtype: string; shape: number[] }>;
  /** Heads: weight [classes, features], and whether a bias is stored. */
  head?: { classes: number; features: number; bias: boolean };
}

export interface ArtifactPage {
  items: Artifact[];
  nextCursor: string | null;
}

export interface Job {
  id: string;
  type: JobType;
  state: JobState;
  /** Merges: {phase, tensorsDone, tensorsTotal}; fine-tunes: {phase, step, totalSteps, loss, valAccuracy}. */
  progress: Record<string, unknown> | null;
  /** A completed merge: {artifact: {kind, id}, diagnostics}. */
  result: Record<string, unknown> | null;
  error: { type: string; message: string } | null;
  recipe: Record<string, unknown> | null;
  attempts: number;
  createdAt: string;
  startedAt: string | null;
  finishedAt: string | null;
  cancelRequested?: boolean;
}

export interface JobPage {
  items: Job[];
  nextCursor: string | null;
}

export interface MethodParameter {
  name: string;
  scope: 'per-model' | 'global';
  type: 'number' | 'integer' | 'boolean' | 'string';
  default?: number | boolean | string;
  required: boolean;
  description: string;
  [more: string]: unknown;
}

export interface MergeMethod {
  name: string;
  kind: 'tensor' | 'adapter' | 'data-driven';
  description: string;
  paper?: string;
  notes?: string;
  baseModel: 'required' | 'optional' | 'none';
  random: boolean;
  minModels?: number;
  maxModels?: number;
  parameters: MethodParameter[];
  /** Data-driven methods: the task data they read (the validation split of evaluation.tasks). */
  data?: {
    split: 'validation';
    labels: 'labeled' | 'unlabeled';
    inputs: Array<'models' | 'adapters'>;
    adapterSpace?: 'parameters' | 'delta';
    adapterOutput?: 'adapter' | 'model';
    baseModelForModels: 'required' | 'optional' | 'none';
  };
  /** A rule across parameters, checked for every tensor before queueing. */
  parameterRule?: string;
}

export interface MethodList {
  items: MergeMethod[];
}

export interface Health {
  status: 'ok';
}

export interface Readiness {
  status: 'ok';
  checks: { redis: string; dataDir: string; blobStore: string };
}

/** A mergekit recipe naming artifact ids (POST /v1/merges). */
export interface MergeRecipe {
  merge_method: string;
  base_model?: string;
  models: Array<{ model?: string; adapter?: string; parameters?: Record<string, unknown> }>;
  parameters?: Record<string, unknown>;
  /** Where the job's outcome is POSTed, signed (see the README's Operations section). */
  callback_url?: string;
  [more: string]: unknown;
}

export interface FinetuneRequest {
  model: string;
  dataset: string;
  mode: 'lora' | 'llora' | 'full';
  rank?: number;
  alpha?: number;
  target_modules?: string[];
  steps?: number;
  learning_rate?: number;
  batch_size?: number;
  weight_decay?: number;
  max_grad_norm?: number;
  warmup_steps?: number;
  seed?: number;
  validation_fraction?: number;
  eval_every?: number;
  checkpoint_every?: number;
  /** A stored head (hed_…) trained through in place of the model's classifier. */
  head?: string;
  train_head?: boolean;
  callback_url?: string;
}

/** POST /v1/analyses: a label-free task-vector analysis (and a disentanglement grid) of adapters or models. */
export interface AnalysisRequest {
  base_model: string;
  adapters?: string[];
  models?: string[];
  names?: string[];
  density?: number;
  disentanglement?: {
    tasks: Array<{ input: string; dataset: string; name?: string; head?: string }>;
    grid?: number[];
    max_examples?: number;
  };
  /** Where the job's webhooks go (signed with the project's secret); see Operations in the README. */
  callback_url?: string;
}

export interface EvaluationRequest {
  model: string;
  adapters?: string[];
  datasets: string[];
  callback_url?: string;
}
