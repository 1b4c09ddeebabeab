import assert from 'node:assert/strict';
import path from 'node:path';
import { describe, it } from 'node:test';
import { ConfigError, loadConfig } from '../../src/config.ts';

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
  ] as const) {
    it(`rejects ${variable}=${value} naming the variable`, () => {
      assert.throws(
        () => loadConfig({ [variable]: value }),
        (err: unknown) =>
          err instanceof ConfigError && err.variable === variable && err.message.startsWith(variable),
      );
    });
  }
});
