// Every Redis key the queue layer owns beside BullMQ's own, in one place so that producers and
// workers agree on them. All live under the deployment's prefix.
import { DEFAULT_JOB_PROJECT } from './contract.ts';

export function jobKeys(prefix: string) {
  return {
    /** Hash: job id -> job type (BullMQ keeps one queue per type; ids are ours and global). */
    types: `${prefix}:jobs:type`,
    /** Hash: job id -> project, for jobs of a project other than the default one. */
    projects: `${prefix}:jobs:project`,
    /**
     * Sorted set of a project's job ids by submission sequence: the listing order and cursor. The default
     * project keeps the name it had before projects existed.
     */
    index: (project: string) =>
      project === DEFAULT_JOB_PROJECT ? `${prefix}:jobs:index` : `${prefix}:project:${project}:jobs:index`,
    /** Sorted set per project and type, same scores, for listings filtered by type. */
    typeIndex: (project: string, type: string) =>
      project === DEFAULT_JOB_PROJECT
        ? `${prefix}:jobs:index:${type}`
        : `${prefix}:project:${project}:jobs:index:${type}`,
    /** Counter giving each submission a unique, increasing sequence number. */
    sequence: `${prefix}:jobs:seq`,
    /** String set while a user asked to cancel the job; the processor polls it between tensors. */
    cancel: (jobId: string) => `${prefix}:cancel:${jobId}`,
    /** JSON record of a job cancelled before it ran (its BullMQ job is removed). */
    cancelled: (jobId: string) => `${prefix}:jobs:cancelled:${jobId}`,
    /** JSON {type, message} a processor writes before failing, so the view can name the error kind. */
    error: (jobId: string) => `${prefix}:jobs:error:${jobId}`,
    /** Time an indexed job was first seen without its BullMQ record (removed by retention). */
    gone: (jobId: string) => `${prefix}:jobs:gone:${jobId}`,
    /** List of JSON WebhookAttemptRecord, oldest first: a job's webhook delivery log. */
    webhookLog: (jobId: string) => `${prefix}:webhooks:log:${jobId}`,
    /** Hash of cluster-wide job metrics (durations, outcomes, bytes merged, training rates) workers add to. */
    metrics: `${prefix}:metrics:jobs`,
    /** JSON {jobId, bodyHash} for a project's Idempotency-Key (one project's keys never answer another's). */
    idempotency: (project: string, key: string) =>
      project === DEFAULT_JOB_PROJECT
        ? `${prefix}:idempotency:${key}`
        : `${prefix}:project:${project}:idempotency:${key}`,
    /** The artifact id a job published in one slot (result, report): one artifact per job and slot, however many attempts. */
    published: (jobId: string, slot: string) => `${prefix}:jobs:published:${jobId}:${slot}`,
    /** BullMQ's own lock of an active job (its value is the attempt's token): an attempt publishes only while it holds it. */
    lock: (queueName: string, jobId: string) => `${prefix}:${queueName}:${jobId}:lock`,
  };
}

/** How long cancel flags and idempotency keys live (a week: longer than any job). */
export const FLAG_TTL_SECONDS = 7 * 24 * 3600;
