// A search's progress while its grid points run: BullMQ keeps the parent in `waiting-children` and nobody
// holds it, so each point (a child merge) records its outcome in one Redis hash of the parent, and the job
// view reads that hash: the parent shows as active, with points done, of all, and the best point so far.
import type { Redis } from 'ioredis';
import type { MergeProgress, MergeSearchPoint } from './contract.ts';
import { FLAG_TTL_SECONDS } from './keys.ts';

/** What a finished grid point leaves for its parent's progress. */
export interface SearchPointSummary {
  index: number;
  params: Record<string, number>;
  /** Mean over tasks of the point's validation accuracy (the references are measured by the parent). */
  validationAverageAccuracy: number | null;
}

const STARTED = 'startedAt';

export function searchProgressKey(prefix: string, parentId: string): string {
  return `${prefix}:jobs:search:${parentId}`;
}

/** The parent of a search point: children are `<parent id>-p<index>` (JobService.childId). */
export function searchParentOf(childId: string, point: MergeSearchPoint): string {
  const suffix = `-p${point.index}`;
  if (!childId.endsWith(suffix)) throw new Error(`${childId} is not grid point ${point.index} of a search`);
  return childId.slice(0, -suffix.length);
}

/** A point started: the first one to start is when the search started. */
export async function markSearchStarted(redis: Redis, prefix: string, parentId: string): Promise<void> {
  const key = searchProgressKey(prefix, parentId);
  await redis.multi().hsetnx(key, STARTED, new Date().toISOString()).expire(key, FLAG_TTL_SECONDS).exec();
}

/** A point finished (a retried point overwrites its own field: the count stays exact). */
export async function recordSearchPoint(
  redis: Redis,
  prefix: string,
  parentId: string,
  summary: SearchPointSummary,
): Promise<void> {
  const key = searchProgressKey(prefix, parentId);
  await redis
    .multi()
    .hset(key, `p${summary.index}`, JSON.stringify(summary))
    .expire(key, FLAG_TTL_SECONDS)
    .exec();
}

export async function clearSearchProgress(redis: Redis, prefix: string, parentId: string): Promise<void> {
  await redis.del(searchProgressKey(prefix, parentId));
}

/** The parent's progress as its children left it; null when no point has started yet. */
export async function readSearchProgress(
  redis: Redis,
  prefix: string,
  parentId: string,
  pointsTotal: number,
): Promise<{ progress: MergeProgress; startedAt: string } | null> {
  const fields = await redis.hgetall(searchProgressKey(prefix, parentId));
  // Fields: startedAt, p<i> (a finished point's summary).
  const startedAt = fields[STARTED];
  if (!startedAt) return null;
  const points = Object.entries(fields)
    .filter(([name]) => /^p\d+$/.test(name))
    .map(([, value]) => JSON.parse(value) as SearchPointSummary)
    .sort((a, b) => a.index - b.index);
  // Ties go to the earlier point, as the parent's selection breaks them.
  let best: SearchPointSummary | null = null;
  for (const point of points) {
    const score = point.validationAverageAccuracy ?? Number.NEGATIVE_INFINITY;
    if (!best || score > (best.validationAverageAccuracy ?? Number.NEGATIVE_INFINITY)) best = point;
  }
  return {
    startedAt,
    progress: {
      phase: 'searching',
      tensorsDone: 0,
      tensorsTotal: 0,
      pointsDone: points.length,
      pointsTotal,
      best,
    },
  };
}
