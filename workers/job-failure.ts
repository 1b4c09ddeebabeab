// How every job fails, one rule for all queues: a user's cancel and typed input errors are
// UnrecoverableError (no retry) recorded as `invalid_input` (or `artifact_not_found`); infrastructure
// faults are rethrown for a retry; anything else (a bug, an error nobody typed) is `internal`, with a
// correlation id that is logged beside the stack and returned in the job's error, never the raw
// internal message.
import { randomUUID } from 'node:crypto';
import { UnrecoverableError } from 'bullmq';
import type { Redis } from 'ioredis';
import { CANCELLED_REASON, JOB_ERROR_TYPES, jobKeys } from '../src/queue/index.ts';
import { MissingArtifactError } from '../src/store/index.ts';

/** Bad input found by the processor itself (a model without config.json, say). */
export class InvalidJobInputError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'InvalidJobInputError';
  }
}

/**
 * The typed errors that mean "the job's input is wrong": deterministic, so retrying cannot help. By
 * name, because sandboxed processors may load a second copy of a module (instanceof would miss).
 */
const INPUT_ERROR_NAMES = new Set([
  'InvalidJobInputError',
  'ModelInputError',
  'RecipeError',
  'MergePlanError',
  'AdapterError',
  'SafetensorsError',
  'ArtifactValidationError',
  'JsonLimitError',
]);

/**
 * System errors (a full disk, a lost connection) may pass; anything else will not. ENOENT too: a
 * file that vanished mid-job is a race (an input deleted, or a stalled attempt's folder removed by
 * its successor); the next attempt either succeeds or names the missing artifact.
 */
const TRANSIENT_CODES = new Set([
  'ENOENT',
  'ENOSPC',
  'EDQUOT',
  'EIO',
  'EMFILE',
  'ENFILE',
  'ENOMEM',
  'EAGAIN',
  'EBUSY',
  'ECONNREFUSED',
  'ECONNRESET',
  'ETIMEDOUT',
  'EPIPE',
]);

export function isTransient(error: unknown): boolean {
  const code = (error as NodeJS.ErrnoException)?.code;
  if (typeof code === 'string' && TRANSIENT_CODES.has(code)) return true;
  if ((error as Error)?.name === 'MaxRetriesPerRequestError') return true;
  // ioredis and BullMQ connection failures
  return /Connection is closed|ECONNREFUSED|Missing lock/i.test((error as Error)?.message ?? '');
}

export function isInputError(error: unknown): boolean {
  return error instanceof Error && INPUT_ERROR_NAMES.has(error.name);
}

/** What a failed job's view carries. */
export interface JobFailure {
  type: string;
  message: string;
  /** Only for `internal`: the id under which the worker logged the error and its stack. */
  correlationId?: string;
}

/** A log line for an internal failure: pino's shape, so worker logs stay one format. */
export type FailureLog = (entry: {
  correlationId: string;
  jobId: string;
  err: { name: string; message: string; stack?: string; code?: string };
}) => void;

const stderrLog: FailureLog = (entry) => {
  process.stderr.write(
    `${JSON.stringify({ level: 50, time: Date.now(), msg: 'job failed on an internal error', ...entry })}\n`,
  );
};

/** Classifies an error that will not be retried. Pure apart from the correlation id. */
export function classifyFailure(error: unknown, options: { missingArtifact?: boolean } = {}): JobFailure {
  if (
    error instanceof MissingArtifactError ||
    (error as Error)?.name === 'MissingArtifactError' ||
    options.missingArtifact
  ) {
    return { type: JOB_ERROR_TYPES.artifactNotFound, message: (error as Error).message };
  }
  if (isInputError(error)) return { type: JOB_ERROR_TYPES.invalidInput, message: (error as Error).message };
  const correlationId = randomUUID();
  return {
    type: JOB_ERROR_TYPES.internal,
    message: `the job failed on an internal error (correlation id ${correlationId}); the worker log has the details`,
    correlationId,
  };
}

export interface FailJobOptions {
  redis: Redis;
  prefix: string;
  jobId: string;
  cancelledByUser: boolean;
  /** Stopped by the worker's own shutdown: rethrown so the job is retried (and resumes). */
  aborted?: boolean;
  /** No retry is left: a transient fault is then recorded as `internal` too. */
  finalAttempt?: boolean;
  /** An input artifact disappeared while the job ran. */
  missingArtifact?: boolean;
  log?: FailureLog;
}

/** Maps what a job threw to what BullMQ should do, recording the failure for the job view. */
export async function failJob(error: unknown, options: FailJobOptions): Promise<never> {
  // An attempt that lost its lock no longer owns the job: the attempt that does records its outcome.
  if ((error as Error)?.name === 'StalePublicationError') throw error;
  if (options.cancelledByUser) throw new UnrecoverableError(CANCELLED_REASON);
  if (options.aborted) throw error;
  if (error instanceof UnrecoverableError || (error as Error)?.name === 'UnrecoverableError') throw error;
  const transient = isTransient(error);
  if (transient && !options.finalAttempt) throw error;
  const failure = classifyFailure(error, { missingArtifact: options.missingArtifact });
  if (failure.correlationId) {
    const err = error instanceof Error ? error : new Error(String(error));
    (options.log ?? stderrLog)({
      correlationId: failure.correlationId,
      jobId: options.jobId,
      err: {
        name: err.name,
        message: err.message,
        stack: err.stack,
        code: (err as NodeJS.ErrnoException).code,
      },
    });
  }
  await options.redis
    .set(jobKeys(options.prefix).error(options.jobId), JSON.stringify(failure))
    .catch(() => undefined);
  // A last transient fault still fails through BullMQ's own path (this was its final attempt).
  if (transient) throw error;
  throw new UnrecoverableError(failure.message);
}
