// A search's grid point (a child merge job) and its parent's records in Redis: when the point starts, when it
// published its artifact and what it scored. A point killed after publishing and before completing leaves an
// artifact no result names; its retry (same job id) deletes it first, so a search that survives a crash ends
// with exactly the artifacts its result and report name.
import {
  markSearchStarted,
  type MergeJobPayload,
  recordSearchPoint,
  type SearchPointSummary,
  searchParentOf,
  searchProgressKey,
} from '../../src/queue/index.ts';
import type { ArtifactStore } from '../../src/store/index.ts';
import type { Redis } from 'ioredis';

/** The job a point runs as (the merge job's context, structurally). */
interface MergeJobContext {
  id: string;
  data: MergeJobPayload;
}

interface PointDependencies {
  redis: Redis;
  store: ArtifactStore;
  prefix: string;
}

const publishedField = (index: number) => `published:p${index}`;

/** Before a point merges: the search is started, and what an earlier attempt of it published is removed. */
export async function startSearchPoint(job: MergeJobContext, deps: PointDependencies): Promise<void> {
  const point = job.data.point!;
  const parent = searchParentOf(job.id, point);
  await markSearchStarted(deps.redis, deps.prefix, parent);
  const key = searchProgressKey(deps.prefix, parent);
  const earlier = await deps.redis.hget(key, publishedField(point.index));
  if (earlier) {
    await deps.store.delete(earlier);
    await deps.redis.hdel(key, publishedField(point.index));
  }
}

/** Right after the point's artifact is stored, before it is evaluated. */
export async function publishedSearchPoint(
  job: MergeJobContext,
  deps: PointDependencies,
  artifact: string,
): Promise<void> {
  const point = job.data.point!;
  const key = searchProgressKey(deps.prefix, searchParentOf(job.id, point));
  await deps.redis.hset(key, publishedField(point.index), artifact);
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
