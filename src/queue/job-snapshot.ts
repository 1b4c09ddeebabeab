// One job as GET /v1/jobs/{id} reads it, in one Redis command: our cancelled record, BullMQ's job record, its state,
// the error kind its processor recorded and the cancel flag. BullMQ's Job.fromId and getJobState are two commands on
// its own (non-pipelined) connection and our three reads are three more; a polled job is the API's hottest read, and
// one command in their place took a quarter to a third off the API's CPU per view (README, bench:api). Being one
// script it is also atomic: a job that finishes between the record and the state can no longer read as completed
// without its result.
import { createHash } from 'node:crypto';
import { Job, type JobJsonRaw, type Queue } from 'bullmq';
import type { Redis } from 'ioredis';

/** BullMQ's state names as getJobState returns them ('waiting' for both its wait and paused lists). */
export type BullState =
  | 'completed'
  | 'failed'
  | 'delayed'
  | 'prioritized'
  | 'active'
  | 'waiting'
  | 'waiting-children'
  | 'unknown';

export type JobSnapshot =
  | { cancelled: string }
  | { cancelled: null; job: null }
  | {
      cancelled: null;
      job: Job;
      state: BullState;
      /** The JSON error kind a processor recorded before failing, if any. */
      recordedError: string | null;
      cancelRequested: boolean;
    };

// The state tests are BullMQ's getStateV2 script (bullmq 5, Redis >= 6.0.6), in its order: a job id sits in one
// of these at a time except briefly while BullMQ's own scripts move it, and those are atomic too.
// test/queue/job-snapshot.test.ts compares the two on jobs in every state, so a BullMQ upgrade that moves a key fails it.
const SCRIPT = `
local cancelled = redis.call('GET', KEYS[1])
if cancelled then return {cancelled} end
local record = redis.call('HGETALL', KEYS[2])
if #record == 0 then return {false} end
local id = ARGV[1]
local state = 'unknown'
if redis.call('ZSCORE', KEYS[5], id) then state = 'completed'
elseif redis.call('ZSCORE', KEYS[6], id) then state = 'failed'
elseif redis.call('ZSCORE', KEYS[7], id) then state = 'delayed'
elseif redis.call('ZSCORE', KEYS[8], id) then state = 'prioritized'
elseif redis.call('LPOS', KEYS[9], id) then state = 'active'
elseif redis.call('LPOS', KEYS[10], id) then state = 'waiting'
elseif redis.call('LPOS', KEYS[11], id) then state = 'waiting'
elseif redis.call('ZSCORE', KEYS[12], id) then state = 'waiting-children'
end
return {false, record, state, redis.call('GET', KEYS[3]), redis.call('EXISTS', KEYS[4])}
`;

const SCRIPT_SHA = createHash('sha1').update(SCRIPT).digest('hex');

type SnapshotReply = [string | null, string[]?, BullState?, (string | null)?, number?];

/** Our own keys of the job the script reads beside BullMQ's. */
export interface SnapshotKeys {
  cancelled: string;
  error: string;
  cancel: string;
}

/**
 * Reads one job of `queue`: EVALSHA, and EVAL with the script only when Redis does not have it (a fresh or
 * restarted server). Not an ioredis defineCommand: on an auto-pipelining connection, a command defined while a
 * batch is pending is missing from that batch (its Pipeline copied the defined commands when it was made), and
 * ioredis then crashes the process when the batch's replies come back one short (redis/ioredis#1931). The lazy
 * definition this replaced did that once in a full test run.
 */
export async function readJobSnapshot(
  redis: Redis,
  queue: Queue,
  id: string,
  keys: SnapshotKeys,
): Promise<JobSnapshot> {
  const bull = queue.keys;
  const keysAndId = [
    keys.cancelled,
    queue.toKey(id),
    keys.error,
    keys.cancel,
    bull.completed,
    bull.failed,
    bull.delayed,
    bull.prioritized,
    bull.active,
    bull.wait,
    bull.paused,
    bull['waiting-children'],
    id,
  ];
  const reply = (await redis.evalsha(SCRIPT_SHA, 12, ...keysAndId).catch((error: Error) => {
    if (!error.message.includes('NOSCRIPT')) throw error;
    return redis.eval(SCRIPT, 12, ...keysAndId);
  })) as SnapshotReply;
  const [cancelled, flat, state, recordedError, cancelFlag] = reply;
  if (cancelled !== null) return { cancelled };
  if (!flat) return { cancelled: null, job: null };
  const record: Record<string, string> = {};
  for (let i = 0; i < flat.length; i += 2) record[flat[i]] = flat[i + 1];
  return {
    cancelled: null,
    job: Job.fromJSON(queue, record as unknown as JobJsonRaw, id),
    state: state ?? 'unknown',
    recordedError: recordedError ?? null,
    cancelRequested: cancelFlag === 1,
  };
}
