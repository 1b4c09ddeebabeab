import assert from 'node:assert/strict';
import path from 'node:path';
import { describe, it } from 'node:test';
import { ConfigError, loadConfig, loadMergeWorkers, loadRuntimeSettings } from '../../src/config.ts';

describe('loadConfig', () => {
  it('applies the documented defaults', () => {
    const config = loadConfig({});
    assert.equal(config.port, 8080);
    assert.equal(config.host, '127.0.0.1');
    assert.equal(config.redisUrl, undefined);
    assert.equal(config.dataDir, path.resolve('./data'));
    assert.equal(config.logLevel, 'info');
  });

  it('reads every variable', () => {
    const config = loadConfig({
      PORT: '9000',
      HOST: '0.0.0.0',
      REDIS_URL: 'redis://10.0.0.1:6380/2',
      LORAFUSE_DATA_DIR: '/srv/lorafuse',
      LOG_LEVEL: 'DEBUG',
    });
    assert.equal(config.port, 9000);
    assert.equal(config.host, '0.0.0.0');
    assert.equal(config.redisUrl, 'redis://10.0.0.1:6380/2');
    assert.equal(config.dataDir, '/srv/lorafuse');
    assert.equal(config.logLevel, 'debug');
  });

  for (const [variable, value] of [
    ['PORT', 'eighty'],
    ['PORT', '70000'],
    ['REDIS_URL', 'http://localhost'],
    ['REDIS_URL', 'not a url'],
    ['LOG_LEVEL', 'loud'],
    ['LORAFUSE_QUEUE_PREFIX', 'a b'],
    ['LORAFUSE_MERGE_WORKERS', 'abc'],
    ['LORAFUSE_MERGE_WORKERS', '-1'],
    ['LORAFUSE_MERGE_WORKERS', '2.5'],
    ['LORAFUSE_MERGE_WORKERS', '65'],
    ['LORAFUSE_MERGE_SHARD_BYTES', 'big'],
    ['LORAFUSE_MERGE_SHARD_BYTES', '0'],
    ['LORAFUSE_MERGE_SHARD_BYTES', '5 parsecs'],
    ['LORAFUSE_BACKEND', 'quantum'],
    ['LORAFUSE_SIMD_KERNELS', 'off'],
    ['LORAFUSE_RUNTIME_IDLE_MS', 'soon'],
  ] as const) {
    it(`rejects ${variable}=${value} naming the variable`, () => {
      assert.throws(
        () => loadConfig({ [variable]: value }),
        (err: unknown) =>
          err instanceof ConfigError && err.variable === variable && err.message.startsWith(variable),
      );
    });
  }

  it('parses the merge and runtime settings that src/merge and src/model are handed', () => {
    const defaults = loadConfig({});
    assert.equal(defaults.mergeWorkers, undefined, 'unset: the merge sizes its own pool');
    assert.deepEqual(defaults.runtime, {
      backend: 'auto',
      simdKernels: true,
      runtimeIdleMs: 60_000,
      librarySearchPath: '',
    });
    const set = loadConfig({
      LORAFUSE_MERGE_WORKERS: '0',
      LORAFUSE_BACKEND: 'CPU',
      LORAFUSE_SIMD_KERNELS: '0',
      LORAFUSE_RUNTIME_IDLE_MS: '0',
      LD_LIBRARY_PATH: '/opt/vulkan/lib:/usr/local/lib',
    });
    assert.equal(set.mergeWorkers, 0, '0 is a valid choice: merge inline');
    assert.equal(defaults.mergeShardBytes, 5_000_000_000, "transformers' 5GB unless set");
    assert.equal(loadConfig({ LORAFUSE_MERGE_SHARD_BYTES: '2GiB' }).mergeShardBytes, 2 * 1024 ** 3);
    assert.equal(loadConfig({ LORAFUSE_MERGE_SHARD_BYTES: '1000000' }).mergeShardBytes, 1_000_000);
    // The linker's own variable, handed to the WebGPU probe (src/model reads no environment).
    assert.deepEqual(set.runtime, {
      backend: 'cpu',
      simdKernels: false,
      runtimeIdleMs: 0,
      librarySearchPath: '/opt/vulkan/lib:/usr/local/lib',
    });
    assert.equal(loadMergeWorkers({ LORAFUSE_MERGE_WORKERS: '4' }), 4);
    assert.equal(loadMergeWorkers({ LORAFUSE_MERGE_WORKERS: '' }), undefined);
    assert.deepEqual(loadRuntimeSettings({ LORAFUSE_BACKEND: 'wasm', LORAFUSE_SIMD_KERNELS: '1' }), {
      backend: 'wasm',
      simdKernels: true,
      runtimeIdleMs: 60_000,
      librarySearchPath: '',
    });
  });

  it('LORAFUSE_MERGE_WORKERS=abc is a ConfigError, not NaN workers (a silent inline merge)', () => {
    assert.throws(
      () => loadMergeWorkers({ LORAFUSE_MERGE_WORKERS: 'abc' }),
      (err: unknown) =>
        err instanceof ConfigError &&
        err.variable === 'LORAFUSE_MERGE_WORKERS' &&
        /expected a whole number, got "abc"/.test(err.message),
    );
  });
});
