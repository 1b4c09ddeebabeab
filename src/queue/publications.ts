// What a job published (its result and report artifacts, named by the publication keys of keys.ts) without
// completing with it: a worker killed between publishing and completing, or a job that then failed or was
// cancelled. One rule for every such artifact, of plain merges, search points and search parents alike: before
// an attempt works, and once a job has ended without a result, what earlier attempts published is deleted, so a
// job ends with exactly the artifacts its result names. The store is passed in (this layer imports none).
import type { Redis } from 'ioredis';
import { jobKeys } from './keys.ts';

/** The slots a job publishes in: its result artifact and its report. */
export const PUBLICATION_SLOTS = ['result', 'report'] as const;

/** Forgets a publication key only while it still names the artifact just deleted. */
const FORGET_SCRIPT = `if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end return 0`;

/** Deletes what the job's earlier attempts published and forgets it; returns the ids deleted. */
export async function discardPublications(
  redis: Redis,
  prefix: string,
  jobId: string,
  artifacts: { delete(id: string): Promise<boolean> },
): Promise<string[]> {
  const keys = jobKeys(prefix);
  const discarded: string[] = [];
  for (const slot of PUBLICATION_SLOTS) {
    const key = keys.published(jobId, slot);
    const id = await redis.get(key);
    if (!id) continue;
    if (await artifacts.delete(id)) discarded.push(id);
    await redis.eval(FORGET_SCRIPT, 1, key, id);
  }
  return discarded;
}
