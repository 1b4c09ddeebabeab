// The one queue contract: queue names, payload/result/progress types and default job options.
// Producers (the API, the CLI) and workers import this module and nothing of each other.
import type { JobsOptions } from 'bullmq';

export const QUEUE_NAMES = {
  merge: 'merge',
  finetune: 'finetune',
  evaluate: 'evaluate',
} as const;

export type JobType = keyof typeof QUEUE_NAMES;

/** The life of every job as users see it (BullMQ's own states are mapped onto these). */
export type JobState = 'queued' | 'active' | 'completed' | 'failed' | 'cancelled';

export type ArtifactKind = 'model' | 'adapter' | 'dataset' | 'report';

export interface ArtifactRef {
  kind: ArtifactKind;
  id: string;
}

/** What the API puts on the merge queue: the recipe with artifact ids in place of paths. */
export interface MergeJobPayload {
  recipe: Record<string, unknown>;
  /** Every artifact id the recipe reads: deletion of these is refused while the job is queued or active. */
  inputs: string[];
  /** The seed random methods use (also written into the recipe); stored so a run can be repeated. */
  seed: number;
}

export interface MergeProgress {
  phase: 'queued' | 'planning' | 'merging' | 'storing' | 'done';
  tensorsDone: number;
  tensorsTotal: number;
}

export interface MergeJobResult {
  artifact: ArtifactRef;
  /** Per-module diagnostics a method reports (e.g. relative SVD error), when it has any. */
  diagnostics?: Record<string, unknown>;
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
}

/** What POST /v1/finetunes puts on the finetune queue. */
export interface FinetuneJobPayload {
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
export interface EvaluateJobPayload {
  recipe: Record<string, unknown>;
  model: string;
  adapters: string[];
  datasets: string[];
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

/** The job record every client reads (GET /v1/jobs/:id). */
export interface JobView {
  id: string;
  type: JobType;
  state: JobState;
  progress: Record<string, unknown> | null;
  result: MergeJobResult | FinetuneJobResult | EvaluateJobResult | Record<string, unknown> | null;
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
