// A search's grid point (a child merge job) and its parent's records in Redis: when the point starts and what it
// scored. What a killed point published is the job's publication like any merge's (discardPublications): its
// retry deletes it first, so a search that survives a crash ends with exactly the artifacts its result and report name.
import {
  markSearchStarted,
  type MergeJobPayload,
  recordSearchPoint,
  type SearchPointSummary,
  searchParentOf,
} from '../../src/queue/index.ts';
import type { Redis } from 'ioredis';

/** The job a point runs as (the merge job's context, structurally). */
interface MergeJobContext {
  id: string;
  data: MergeJobPayload;
}

interface PointDependencies {
  redis: Redis;
  prefix: string;
}

/** Before a point merges: the search is started (the first point to start says when). */
export async function startSearchPoint(job: MergeJobContext, deps: PointDependencies): Promise<void> {
  await markSearchStarted(deps.redis, deps.prefix, searchParentOf(job.id, job.data.point!));
}

/** The point is evaluated: its outcome for the parent's progress (and its artifact is now in its result). */
export async function finishSearchPoint(
  job: MergeJobContext,
  deps: PointDependencies,
  summary: Omit<SearchPointSummary, 'index' | 'params'>,
): Promise<void> {
  const point = job.data.point!;
  const parent = searchParentOf(job.id, point);
  await recordSearchPoint(deps.redis, deps.prefix, parent, {
    index: point.index,
    params: point.params,
    ...summary,
  });
}
