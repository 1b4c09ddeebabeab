// The access settings: auth on unless LORAFUSE_AUTH says otherwise, a bootstrap key long enough to be a
// credential (and never echoed in the error), CORS origins that are origins, rate limit and timeouts in range.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ConfigError, loadConfig } from '../../src/config.ts';

describe('access settings', () => {
  it('defaults to auth on, no bootstrap key, CORS off, a rate limit and both timeouts', () => {
    assert.deepEqual(loadConfig({}).access, {
      authEnabled: true,
      bootstrapKey: undefined,
      rateLimit: 6000,
      rateLimitWindowMs: 60_000,
      idleTimeoutMs: 60_000,
      requestTimeoutMs: 6 * 3600 * 1000,
      corsOrigins: [],
      keyCacheMs: 5000,
    });
  });

  it('reads every variable', () => {
    const access = loadConfig({
      LORAFUSE_AUTH: 'false',
      LORAFUSE_BOOTSTRAP_KEY: 'k'.repeat(40),
      LORAFUSE_RATE_LIMIT: '0',
      LORAFUSE_RATE_LIMIT_WINDOW_S: '10',
      LORAFUSE_IDLE_TIMEOUT_S: '5',
      LORAFUSE_REQUEST_TIMEOUT_S: '0',
      LORAFUSE_CORS_ORIGINS: 'https://dash.example, http://localhost:3000/',
      LORAFUSE_KEY_CACHE_S: '0',
    }).access;
    assert.equal(access.authEnabled, false);
    assert.equal(access.bootstrapKey, 'k'.repeat(40));
    assert.equal(access.rateLimit, 0);
    assert.equal(access.rateLimitWindowMs, 10_000);
    assert.equal(access.idleTimeoutMs, 5000);
    assert.equal(access.requestTimeoutMs, 0);
    assert.deepEqual(access.corsOrigins, ['https://dash.example', 'http://localhost:3000']);
    assert.equal(access.keyCacheMs, 0);
  });

  it('refuses a short bootstrap key without echoing it, a non-origin, and a bad flag', () => {
    const secret = 'short-secret-value';
    assert.throws(
      () => loadConfig({ LORAFUSE_BOOTSTRAP_KEY: secret }),
      (error: unknown) =>
        error instanceof ConfigError &&
        error.variable === 'LORAFUSE_BOOTSTRAP_KEY' &&
        !error.message.includes(secret),
    );
    for (const origin of ['dash.example', 'https://dash.example/path', 'ftp//x']) {
      assert.throws(
        () => loadConfig({ LORAFUSE_CORS_ORIGINS: origin }),
        (error: unknown) => error instanceof ConfigError && error.variable === 'LORAFUSE_CORS_ORIGINS',
        origin,
      );
    }
    assert.throws(
      () => loadConfig({ LORAFUSE_AUTH: 'maybe' }),
      (error: unknown) => error instanceof ConfigError && error.variable === 'LORAFUSE_AUTH',
    );
    assert.throws(
      () => loadConfig({ LORAFUSE_KEY_CACHE_S: '301' }),
      (error: unknown) => error instanceof ConfigError && error.variable === 'LORAFUSE_KEY_CACHE_S',
    );
    assert.throws(
      () => loadConfig({ LORAFUSE_IDLE_TIMEOUT_S: '-1' }),
      (error: unknown) => error instanceof ConfigError && error.variable === 'LORAFUSE_IDLE_TIMEOUT_S',
    );
  });
});
