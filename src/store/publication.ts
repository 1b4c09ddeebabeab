// How a record becomes visible, in one atomic step: the record, its index and digest entries, and,
// for a job's result, a guard and a publication key. The guard is a key that must still hold a token
// (a job's lock): an attempt that lost its lock publishes nothing. The publication key names the one
// artifact a job publishes in a slot: a second attempt of the same job gets the first's record back
// instead of storing a second artifact (what a Redis outage longer than the lock used to cause).

/** Publishing a job's result: at most one artifact per (job, slot), only while the job is held. */
export interface Publication {
  /** Redis key naming the artifact this job published in this slot (set on first publication). */
  key: string;
  /** How long the publication key outlives the job (seconds). */
  ttlSeconds: number;
  /** Key that must hold `token` at the moment of publication (BullMQ's job lock); absent: no check. */
  guard?: { key: string; token: string };
}

/** The attempt lost its job's lock before publishing: another attempt owns the job and publishes. */
export class StalePublicationError extends Error {
  constructor(readonly publicationKey: string) {
    super(
      `the job's lock was lost before its result was published (${publicationKey}); another attempt publishes it`,
    );
    this.name = 'StalePublicationError';
  }
}

/**
 * KEYS: record, kind index, kind digests[, publication[, guard]]
 * ARGV: record JSON, id, digest, has publication, has guard, guard token, publication TTL, record key prefix
 * Returns {'stored'}, {'existing', id} or {'stale'}.
 */
export const PUBLISH_SCRIPT = `
local hasPublication = ARGV[4] == '1'
if ARGV[5] == '1' and redis.call('GET', KEYS[5]) ~= ARGV[6] then return {'stale'} end
if hasPublication then
  local existing = redis.call('GET', KEYS[4])
  if existing and redis.call('EXISTS', ARGV[8] .. existing) == 1 then return {'existing', existing} end
end
redis.call('SET', KEYS[1], ARGV[1])
redis.call('ZADD', KEYS[2], 0, ARGV[2])
redis.call('HSET', KEYS[3], ARGV[3], ARGV[2])
if hasPublication then redis.call('SET', KEYS[4], ARGV[2], 'EX', ARGV[7]) end
return {'stored'}`;
