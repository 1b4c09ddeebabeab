// How the model processors fail: a user's cancel and bad input are UnrecoverableError (no retry),
// with the error kind recorded for the job view; infrastructure faults are rethrown for a retry.
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

/** System errors (a full disk, a lost connection) may pass; anything else the runtime throws will not. */
const TRANSIENT_CODES = new Set([
  'ENOSPC',
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
  // ioredis and BullMQ connection failures
  return /Connection is closed|ECONNREFUSED|Redis|Missing lock/i.test((error as Error)?.message ?? '');
}

/**
 * Maps what a model job threw to what BullMQ should do. The model runtime's own errors (shapes that do
 * not fit, an unknown architecture, a dataset the model cannot read) are deterministic: retrying
 * cannot help, so they fail the job at once as invalid input.
 */
export async function failJob(
  error: unknown,
  options: { redis: Redis; prefix: string; jobId: string; cancelledByUser: boolean; aborted?: boolean },
): Promise<never> {
  if (options.cancelledByUser) throw new UnrecoverableError(CANCELLED_REASON);
  // Stopped by the worker's own shutdown: the job is retried (and resumes).
  if (options.aborted) throw error;
  if (error instanceof UnrecoverableError) throw error;
  if (isTransient(error)) throw error;
  const type =
    error instanceof MissingArtifactError ? JOB_ERROR_TYPES.artifactNotFound : JOB_ERROR_TYPES.invalidInput;
  const message = (error as Error)?.message ?? String(error);
  await options.redis
    .set(jobKeys(options.prefix).error(options.jobId), JSON.stringify({ type, message }))
    .catch(() => undefined);
  throw new UnrecoverableError(message);
}
