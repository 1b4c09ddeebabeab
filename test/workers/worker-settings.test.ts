import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ConfigError } from '../../src/config.ts';
import { loadTrainingRuntimes, loadWorkerSettings } from '../../workers/worker-settings.ts';

describe('worker settings', () => {
  it('apply the documented defaults', () => {
    assert.deepEqual(loadWorkerSettings({}), {
      lockDurationMs: 30_000,
      stalledIntervalMs: 30_000,
      shutdownGraceMs: 60_000,
    });
    assert.equal(loadTrainingRuntimes({}), 2);
  });

  it('read LORAFUSE_TRAIN_RUNTIMES, and reject what is not a whole number from 1 to 16', () => {
    assert.equal(loadTrainingRuntimes({ LORAFUSE_TRAIN_RUNTIMES: '1' }), 1);
    assert.equal(loadTrainingRuntimes({ LORAFUSE_TRAIN_RUNTIMES: '16' }), 16);
    for (const bad of ['0', '17', '2.5', 'two', '-1']) {
      assert.throws(
        () => loadTrainingRuntimes({ LORAFUSE_TRAIN_RUNTIMES: bad }),
        (err: unknown) => err instanceof ConfigError && err.message.startsWith('LORAFUSE_TRAIN_RUNTIMES'),
        bad,
      );
    }
  });

  it('reject a lock period out of range', () => {
    assert.throws(() => loadWorkerSettings({ LORAFUSE_WORKER_LOCK_MS: '50' }), ConfigError);
  });
});
