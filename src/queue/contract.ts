// The one queue contract: queue names, payload/result/progress types and default job options.
// Producers (the API, the CLI) and workers import this module and nothing of each other.
import type { JobsOptions } from 'bullmq';

export const QUEUE_NAMES = {
  merge: 'merge',
  finetune: 'finetune',
  evaluate: 'evaluate',
  /** Label-free analyses of task vectors (POST /v1/analyses): their own queue, so a long disentanglement grid never holds up evaluations. */
  analyze: 'analyze',
} as const;

export type JobType = keyof typeof QUEUE_NAMES;

/** The life of every job as users see it (BullMQ's own states are mapped onto these). */
export type JobState = 'queued' | 'active' | 'completed' | 'failed' | 'cancelled';

export type ArtifactKind = 'model' | 'adapter' | 'dataset' | 'head' | 'report';

export interface ArtifactRef {
  kind: ArtifactKind;
  id: string;
}

/**
 * One task of an evaluated merge, as the API resolved it: task i belongs to the recipe's input i. `head` says how
 * the shared body is read: `adapter:<id>` (that adapter's modules_to_save head), `head:<id>` (a stored head),
 * `model:<id>` (that model's own classifier) or `model` (the evaluated model's own classifier).
 */
export interface EvaluationTask {
  name: string;
  validation: string;
  test: string;
  head: string;
  /** The individually fine-tuned artifact (adapter or model) whose accuracy normalizes the merged one. */
  reference: string | null;
}

/** `evaluation` of a merge: the tasks, and the runnable model adapters are evaluated over. */
export interface MergeEvaluation {
  tasks: EvaluationTask[];
  /** The model the merged adapter, the reference adapters and the base row run on (null: model inputs only). */
  baseModel: string | null;
  /** The weight disentanglement the report draws (absent or null: none). */
  disentanglement?: MergeDisentanglement | null;
}

/** ξ(λ₁, λ₂) of two of a merge's tasks on their validation examples, as POST /v1/analyses computes it. */
export interface MergeDisentanglement {
  /** Indices into `tasks` (task i belongs to recipe input i). */
  tasks: [number, number];
  grid: number[];
  /** Examples per task: the first ones of its validation dataset. */
  maxExamples: number;
}

/** `search` of a merge: a grid over method parameters (global ones), one child merge per point. */
export interface MergeSearch {
  grid: Record<string, number[]>;
  /** `best`: only the chosen point's artifact stays; `all`: every point's artifact is kept. */
  keep: 'best' | 'all';
}

/** A search child: which point of its parent's grid it merges (its recipe already carries the values). */
export interface MergeSearchPoint {
  /** Position in the grid (the child job is `<parent id>-p<index>`). */
  index: number;
  params: Record<string, number>;
}

/**
 * Where a job's outcome is POSTed (any job type may carry it). Only the URL the client gave and the project whose
 * webhook secret signs it: the secret itself never enters job data.
 */
export interface JobCallback {
  callbackUrl?: string;
  /** The project that owns the job (API keys); absent: DEFAULT_PROJECT. */
  project?: string;
}

/** The project of jobs and artifacts made without an API key's project. */
export const DEFAULT_PROJECT = 'default';

/** What the API puts on the merge queue: the recipe with artifact ids in place of paths. */
export interface MergeJobPayload extends JobCallback {
  recipe: Record<string, unknown>;
  /** Every artifact id the recipe reads: deletion of these is refused while the job is queued or active. */
  inputs: string[];
  /** The seed random methods use (also written into the recipe); stored so a run can be repeated. */
  seed: number;
  /** Evaluate the merged artifact per task and write a report. */
  evaluation?: MergeEvaluation;
  /** Set on a search's parent job: its children merge the grid's points. */
  search?: MergeSearch;
  /** Set on a search's child job: it evaluates validation only, and writes no report. */
  point?: MergeSearchPoint;
  /** Set by a merge that split itself into shard jobs, once they are queued: its next run assembles them. */
  sharding?: { shards: number; maxShardBytes: number };
  /** Set on a shard job: which shard of its parent's output it merges. */
  shard?: MergeShardTask;
}

/** One shard of a sharded merge: a child job (`<parent id>-s<index>`) that any merge worker may take. */
export interface MergeShardTask {
  /** The merge job the shard belongs to (it assembles the shards and publishes the one artifact). */
  parent: string;
  index: number;
  count: number;
  /** The shard's file name in the output (`model-00002-of-00005.safetensors`). */
  file: string;
  /** Its tensors, in writing order. */
  tensors: string[];
  /** Every shard of the output in order, file and tensor count (for the parent's progress). */
  outline: Array<{ file: string; tensors: number }>;
}

/** A shard job's id: deterministic, so a split repeated after a crash queues no shard twice. */
export function shardJobId(parentId: string, index: number): string {
  return `${parentId}-s${index}`;
}

/** What a shard job returns to its parent: the shard's blob, kept for the parent until it publishes. */
export interface MergeShardResult {
  shard: {
    index: number;
    file: string;
    sha256: string;
    size: number;
    tensors: number;
    /** Which worker merged it (`host:pid`). */
    worker: string;
    mergeMs: number;
  };
  diagnostics?: Record<string, unknown>;
}

/** What a data-driven merge learned (LoraHub weights, AdaMerging λ, ...), for the result and the report. */
export interface DataDrivenMergeSummary {
  method: string;
  /** Validation examples read per task, in task order. */
  examples: number[];
  coefficients?: number[];
  layerCoefficients?: Array<{ tensor: string; lambdas: number[] }>;
  objective?: Array<{ step: number; value: number }>;
  details?: Record<string, unknown>;
}

export interface MergeProgress {
  phase: 'queued' | 'planning' | 'merging' | 'storing' | 'evaluating' | 'reporting' | 'searching' | 'done';
  tensorsDone: number;
  tensorsTotal: number;
  /** While evaluating: evaluations made (or read from the cache) and to make. */
  evaluationsDone?: number;
  evaluationsTotal?: number;
  /** A search's parent: grid points merged and evaluated so far, of all. */
  pointsDone?: number;
  pointsTotal?: number;
  /**
   * A search's parent while its points run: the finished point with the best average validation accuracy so
   * far (the final choice divides by the references' accuracies, which the parent measures once all are done).
   */
  best?: { index: number; params: Record<string, number>; validationAverageAccuracy: number | null } | null;
  /** A sharded merge: shard jobs finished so far, of all. */
  shardsDone?: number;
  shardsTotal?: number;
}

export interface MergeJobResult {
  artifact: ArtifactRef;
  /** Per-module diagnostics a method reports (e.g. relative SVD error), when it has any. */
  diagnostics?: Record<string, unknown>;
  /** The report artifact (report.json + report.html) of an evaluated merge or a search. */
  report?: ArtifactRef;
  /** The headline numbers of the report (test split; a search child: validation). */
  evaluation?: {
    averageAccuracy: number | null;
    averageNormalizedAccuracy: number | null;
    validationAverageAccuracy: number | null;
    validationAverageNormalizedAccuracy: number | null;
  };
  /** A search's chosen point. */
  chosen?: { index: number; params: Record<string, number>; job: string | null };
  /** A search child: its grid point. */
  point?: MergeSearchPoint;
  /** A search child: the evaluations it made (validation split), for the parent's report. */
  evaluations?: unknown[];
  /** Evaluations served from the (artifact, head, dataset) cache instead of run. */
  cacheHits?: number;
  /** Data-driven methods: what they learned from the tasks' validation data. */
  dataDriven?: DataDrivenMergeSummary;
  /** A merge run as shard jobs: the shard size and which worker merged each shard. */
  sharding?: {
    maxShardBytes: number;
    shards: Array<{
      index: number;
      file: string;
      size: number;
      tensors: number;
      worker: string;
      mergeMs: number;
    }>;
  };
}

export type FinetuneMode = 'lora' | 'llora' | 'full';

/** Training settings a fine-tune request may set; the runtime's defaults fill the rest. */
export interface FinetuneHyperparameters {
  rank?: number;
  alpha?: number;
  target_modules?: string[];
  steps?: number;
  learning_rate?: number;
  batch_size?: number;
  weight_decay?: number;
  max_grad_norm?: number;
  warmup_steps?: number;
  validation_fraction?: number;
  eval_every?: number;
  checkpoint_every?: number;
  /** A stored head (hed_…) trained through in place of the model's classifier. */
  head?: string;
  /** Train the head too (default: frozen when `head` is given, trained otherwise). */
  train_head?: boolean;
}

/** What POST /v1/finetunes puts on the finetune queue. */
export interface FinetuneJobPayload extends JobCallback {
  /** The request as accepted (ids, mode, hyperparameters, the seed chosen): the job's recipe. */
  recipe: Record<string, unknown>;
  model: string;
  dataset: string;
  mode: FinetuneMode;
  hyperparameters: FinetuneHyperparameters;
  seed: number;
  inputs: string[];
}

export interface FinetuneProgress {
  phase: 'queued' | 'preparing' | 'training' | 'storing' | 'done';
  step: number;
  totalSteps: number;
  loss: number | null;
  /** The last validation accuracy measured (the runtime reports it with the result). */
  valAccuracy: number | null;
}

export interface FinetuneJobResult {
  /** An adapter (lora, llora) or a model (full). */
  artifact: ArtifactRef;
  mode: FinetuneMode;
  steps: number;
  lossCurve: Array<{ step: number; loss: number }>;
  validation: Array<{ step: number; accuracy: number; loss: number }>;
  valAccuracy: number | null;
  finalLoss: number | null;
  /** The step a restarted attempt resumed from (its checkpoint); null when training ran in one go. */
  resumedFromStep: number | null;
  samplesPerSecond: number;
}

/** What POST /v1/evaluations puts on the evaluate queue. */
export interface EvaluateJobPayload extends JobCallback {
  recipe: Record<string, unknown>;
  model: string;
  adapters: string[];
  datasets: string[];
  /** Dataset id → the head it is read through (`adapter:<id>`, `head:<id>`, `model:<id>`); absent: as loaded. */
  heads?: Record<string, string>;
  inputs: string[];
}

export interface EvaluateProgress {
  phase: 'queued' | 'loading' | 'evaluating' | 'done';
  done: number;
  total: number;
}

/** One (adapter, dataset) pair: the base model alone when `adapter` is null. */
export interface EvaluationEntry {
  adapter: string | null;
  dataset: string;
  /** The head the dataset was read through; null: the model's (or the adapter's) own classifier. */
  head?: string | null;
  task: string;
  split: string;
  examples: number;
  accuracy: number;
  loss: number;
}

export interface EvaluateJobResult {
  model: string;
  results: EvaluationEntry[];
}

/** One task of a weight-disentanglement analysis: which input is its task vector, which dataset its examples. */
export interface AnalyzeTask {
  name: string;
  /** Index into AnalyzeJobPayload.artifacts. */
  input: number;
  dataset: string;
  /** The head the task reads through (`adapter:<id>`, `head:<id>`, `model:<id>`); absent: its input's own. */
  head?: string;
}

/** What POST /v1/analyses puts on the analyze queue. */
export interface AnalyzeJobPayload extends JobCallback {
  /** The request as accepted, defaults filled: the job's recipe. */
  recipe: Record<string, unknown>;
  baseModel: string;
  kind: 'adapter' | 'model';
  /** The adapters or models analysed, in matrix order. */
  artifacts: string[];
  /** Display names in matrix order (task names, else the ids). */
  names: string[];
  /** TIES trim before counting sign conflicts (1: none). */
  density: number;
  disentanglement: { tasks: [AnalyzeTask, AnalyzeTask]; grid: number[]; maxExamples: number } | null;
  inputs: string[];
}

export interface AnalyzeProgress {
  phase: 'queued' | 'loading' | 'analyzing' | 'disentangling' | 'storing' | 'done';
  done: number;
  total: number;
}

export interface AnalyzeJobResult {
  /** The report artifact (report.json + report.html, kind `analysis`). */
  artifact: ArtifactRef;
  summary: string;
  meanOffDiagonalCosine: number;
  meanOffDiagonalDeltaCosine: number | null;
  /** Mean of ξ over the grid, when a disentanglement was asked for. */
  meanDisentanglementError: number | null;
}

/**
 * The project every job belongs to rides in its data (`project`), so a worker writes its artifacts under the
 * project that queued it. Jobs queued before projects existed carry none: they are the default project's.
 */
export interface JobOwnership {
  project?: string;
}

/** The default project's name (the same as the store's DEFAULT_PROJECT; the contract imports nothing of ours). */
export const DEFAULT_JOB_PROJECT = 'default';

/** The project a job's data names. */
export function jobProject(data: unknown): string {
  const project = (data as JobOwnership | null | undefined)?.project;
  return typeof project === 'string' && project !== '' ? project : DEFAULT_JOB_PROJECT;
}

/** The job record every client reads (GET /v1/jobs/:id). */
export interface JobView {
  id: string;
  type: JobType;
  state: JobState;
  progress: Record<string, unknown> | null;
  result:
    | MergeJobResult
    | FinetuneJobResult
    | EvaluateJobResult
    | AnalyzeJobResult
    | Record<string, unknown>
    | null;
  /** `correlationId` only for `internal`: the id the worker logged the error's details under. */
  error: { type: string; message: string; correlationId?: string } | null;
  recipe: Record<string, unknown> | null;
  attempts: number;
  createdAt: string;
  startedAt: string | null;
  finishedAt: string | null;
  /** Present and true while a cancel was asked of an active job that has not stopped yet. */
  cancelRequested?: boolean;
}

/** Stable kinds a failed job's `error.type` takes (processors may add more specific ones). */
export const JOB_ERROR_TYPES = {
  /** The recipe or its inputs are wrong: retrying cannot help. */
  invalidInput: 'invalid_input',
  /** An input artifact id does not exist (or has the wrong kind). */
  artifactNotFound: 'artifact_not_found',
  /** The worker died or lost its lock too many times. */
  stalled: 'stalled',
  /** Anything else (after the retries were spent). */
  internal: 'internal',
} as const;

/** Message of the UnrecoverableError a processor throws when a user cancelled its job. */
export const CANCELLED_REASON = 'cancelled by user';

/** How long finished jobs are kept: BullMQ's KeepJobs (age in seconds, and the newest `count`). */
export interface JobRetention {
  completed: { age: number; count: number };
  /** Failed and cancelled-while-running jobs (BullMQ's failed set). */
  failed: { age: number; count: number };
}

export const DEFAULT_JOB_RETENTION: JobRetention = {
  completed: { age: 7 * 24 * 3600, count: 10_000 },
  failed: { age: 30 * 24 * 3600, count: 10_000 },
};

/**
 * Infrastructure faults (Redis blips, a full disk) are retried with exponential backoff;
 * bad input is thrown as UnrecoverableError and fails at once. Finished jobs are kept for the
 * retention's age and count so that clients can read their records, then removed by BullMQ when a
 * later job finishes (their artifacts stay: they are records of the store, not of the queue).
 */
export function jobOptions(retention: JobRetention = DEFAULT_JOB_RETENTION): JobsOptions {
  return {
    attempts: 3,
    backoff: { type: 'exponential', delay: 2000 },
    removeOnComplete: { ...retention.completed },
    removeOnFail: { ...retention.failed },
  };
}

export const DEFAULT_JOB_OPTIONS: JobsOptions = jobOptions();

/** The queue webhook deliveries wait on (retried with backoff); not a job type clients submit. */
export const WEBHOOK_QUEUE = 'webhooks';

/** What a webhook announces: a job reached one of its final states. */
export type WebhookEvent = 'job.completed' | 'job.failed' | 'job.cancelled';

/** One webhook delivery on WEBHOOK_QUEUE; its BullMQ job id is the delivery id, so a second enqueue is a no-op. */
export interface WebhookDeliveryPayload {
  deliveryId: string;
  event: WebhookEvent;
  jobId: string;
  jobType: JobType;
  callbackUrl: string;
  project: string;
  /** When the job reached its final state (ISO 8601). */
  occurredAt: string;
}

/** One attempt of one delivery, as the delivery log (GET /v1/jobs/{id}/webhooks) lists it. */
export interface WebhookAttemptRecord {
  deliveryId: string;
  event: WebhookEvent;
  attempt: number;
  /** When the attempt started (ISO 8601). */
  at: string;
  url: string;
  /** The receiver's HTTP status; null when no response came (refused, timed out, blocked address). */
  status: number | null;
  /** `delivered` (2xx), `retrying` (another attempt follows), `failed` (given up). */
  outcome: 'delivered' | 'retrying' | 'failed';
  durationMs: number;
  error: string | null;
  /** When the next attempt is due (retrying only). */
  nextAttemptAt: string | null;
}
