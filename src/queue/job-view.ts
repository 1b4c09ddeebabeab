// Maps BullMQ's job record and states onto the JobView clients read.
import type { Job } from 'bullmq';
import { CANCELLED_REASON, JOB_ERROR_TYPES, type JobState, type JobType, type JobView } from './contract.ts';

/** BullMQ state -> ours. A job waiting out a retry backoff ('delayed') is still queued. */
export function mapState(bullState: string, failedReason: string | undefined): JobState {
  switch (bullState) {
    case 'active':
      return 'active';
    case 'completed':
      return 'completed';
    case 'failed':
      return failedReason === CANCELLED_REASON ? 'cancelled' : 'failed';
    default:
      return 'queued';
  }
}

function iso(ms: number | undefined | null): string | null {
  return ms ? new Date(ms).toISOString() : null;
}

function errorOf(
  state: JobState,
  failedReason: string | undefined,
  recorded: JobView['error'],
): JobView['error'] {
  if (state !== 'failed') return null;
  if (recorded) return recorded;
  const message = failedReason ?? 'unknown error';
  const stalled = /stalled more than allowable limit/.test(message);
  return { type: stalled ? JOB_ERROR_TYPES.stalled : JOB_ERROR_TYPES.internal, message };
}

export function toJobView(
  type: JobType,
  job: Job,
  bullState: string,
  recordedError: { type: string; message: string } | null,
  cancelRequested: boolean,
): JobView {
  // A merge that queued its own shard jobs is running until it has assembled them, whether BullMQ has it waiting
  // for them or waiting for a worker to assemble; so a cancel asks it to stop rather than removing its flow.
  const splitMerge = (job.data as { sharding?: unknown } | undefined)?.sharding !== undefined;
  const waitingOnOwnWork =
    (bullState === 'waiting-children' && job.processedOn) ||
    (splitMerge && bullState !== 'completed' && bullState !== 'failed');
  const state = waitingOnOwnWork ? 'active' : mapState(bullState, job.failedReason);
  const progress = typeof job.progress === 'object' && job.progress !== null ? job.progress : null;
  const data = (job.data ?? {}) as { recipe?: Record<string, unknown> };
  const view: JobView = {
    id: job.id as string,
    type,
    state,
    progress: progress as Record<string, unknown> | null,
    result: state === 'completed' ? (job.returnvalue ?? null) : null,
    error: errorOf(state, job.failedReason, recordedError),
    recipe: data.recipe ?? null,
    attempts: Math.max(job.attemptsStarted ?? 0, job.attemptsMade ?? 0),
    createdAt: iso(job.timestamp) as string,
    startedAt: iso(job.processedOn),
    finishedAt:
      state === 'completed' || state === 'failed' || state === 'cancelled' ? iso(job.finishedOn) : null,
  };
  if (cancelRequested && state === 'active') view.cancelRequested = true;
  return view;
}
