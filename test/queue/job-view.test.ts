// BullMQ's job states as clients read them: a merge that queued its own shard jobs reads `active` until it has
// assembled them (so a cancel asks it to stop rather than removing the flow), a search's parent that has not run
// yet reads `queued`, and a job that failed with the cancel reason reads `cancelled`.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { Job } from 'bullmq';
import { CANCELLED_REASON, toJobView } from '../../src/queue/index.ts';

function job(fields: Partial<Job>): Job {
  return { id: 'job_1', data: { recipe: {} }, timestamp: 1, attemptsMade: 0, ...fields } as Job;
}

test('a merge waiting for the shard jobs it queued is active; a search parent not yet run is queued', () => {
  const started = { processedOn: 5 };
  assert.equal(toJobView('merge', job(started), 'waiting-children', null, false).state, 'active');
  assert.equal(toJobView('merge', job({}), 'waiting-children', null, false).state, 'queued');
  // All shards done, waiting for a worker to assemble them: still running, as is a retry's backoff.
  const split = { ...started, data: { recipe: {}, sharding: { shards: 4, maxShardBytes: 100 } } };
  for (const bullState of ['waiting', 'prioritized', 'delayed']) {
    assert.equal(toJobView('merge', job(split), bullState, null, false).state, 'active', bullState);
  }
  assert.equal(toJobView('merge', job({ processedOn: 5 }), 'waiting', null, false).state, 'queued');
  const view = toJobView('merge', job(split), 'waiting-children', null, true);
  assert.equal(view.cancelRequested, true);
  assert.equal(
    toJobView(
      'merge',
      job({ ...split, failedReason: CANCELLED_REASON, finishedOn: 9 }),
      'failed',
      null,
      false,
    ).state,
    'cancelled',
  );
  assert.equal(
    toJobView('merge', job({ ...split, finishedOn: 9 }), 'completed', null, false).state,
    'completed',
  );
});
