// A job's artifacts are published once per job and slot, and only by the attempt that holds the
// job's lock (src/store/publication.ts): an attempt that lost its lock (a Redis outage longer than
// the lock, a stalled worker) stores nothing, and a second publication gets the artifact already published
// back. What a killed attempt published is deleted before the next attempt works (src/queue/publications.ts).
import { FLAG_TTL_SECONDS, type JobType, jobKeys, QUEUE_NAMES } from '../src/queue/index.ts';
import type { Publication } from '../src/store/index.ts';

/** What a job publishes: its result artifact and its report. */
export type PublicationSlot = 'result' | 'report';

export type JobPublications = (slot: PublicationSlot) => Publication;

/** `token`: the attempt's lock token, as BullMQ hands it to the processor (absent: no lock check). */
export function jobPublications(
  prefix: string,
  type: JobType,
  jobId: string,
  token?: string,
): JobPublications {
  const keys = jobKeys(prefix);
  return (slot) => ({
    key: keys.published(jobId, slot),
    ttlSeconds: FLAG_TTL_SECONDS,
    guard: token ? { key: keys.lock(QUEUE_NAMES[type], jobId), token } : undefined,
  });
}

/** The attempt lost its lock: it must neither record a failure nor clean up what the owning attempt uses. */
export function isStalePublication(error: unknown): boolean {
  return (error as Error)?.name === 'StalePublicationError';
}
