// How REDIS_URL, REDIS_SENTINELS and REDIS_CLUSTER become ioredis options (no server needed: the
// plan is what `new Redis` / `new Cluster` receive).
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ConfigError, loadConfig } from '../../src/config.ts';
import { redisConnectionPlan } from '../../src/queue/index.ts';

const API = { maxRetriesPerRequest: 1 };

describe('Redis deployments', () => {
  it('standalone: the URL as given (rediss:// is TLS to ioredis), the prefix unchanged', () => {
    const config = loadConfig({ REDIS_URL: 'rediss://user:p%40ss@cache.example:6380/3' });
    assert.deepEqual(config.redis, { mode: 'standalone' });
    assert.equal(config.queuePrefix, 'lorafuse');
    assert.deepEqual(redisConnectionPlan(config.redisUrl!, config.redis, API), {
      kind: 'redis',
      url: 'rediss://user:p%40ss@cache.example:6380/3',
      options: API,
    });
  });

  it('sentinel: the sentinels find the master; credentials, database and TLS come from REDIS_URL', () => {
    const config = loadConfig({
      REDIS_URL: 'rediss://:secret@mymaster/2',
      REDIS_SENTINELS: 's1.example:26379, s2.example ,[fd00::1]:26380',
      REDIS_SENTINEL_NAME: 'mymaster',
      REDIS_SENTINEL_PASSWORD: 'sentinel-secret',
      REDIS_SENTINEL_TLS: 'true',
    });
    assert.deepEqual(config.redis, {
      mode: 'sentinel',
      sentinels: [
        { host: 's1.example', port: 26379 },
        { host: 's2.example', port: 26379 },
        { host: 'fd00::1', port: 26380 },
      ],
      name: 'mymaster',
      sentinelPassword: 'sentinel-secret',
      sentinelTls: true,
    });
    const plan = redisConnectionPlan(config.redisUrl!, config.redis, API);
    assert.equal(plan.kind, 'redis');
    assert.ok(!('url' in plan));
    assert.deepEqual(plan.options, {
      password: 'secret',
      db: 2,
      tls: {},
      maxRetriesPerRequest: 1,
      sentinels: [
        { host: 's1.example', port: 26379 },
        { host: 's2.example', port: 26379 },
        { host: 'fd00::1', port: 26380 },
      ],
      name: 'mymaster',
      sentinelPassword: 'sentinel-secret',
      enableTLSForSentinelMode: true,
    });
  });

  it('cluster: seeds from REDIS_URL and REDIS_CLUSTER_NODES, every key under a {hash-tag} prefix', () => {
    const config = loadConfig({
      REDIS_URL: 'rediss://default:pw@node-a.example:7000',
      REDIS_CLUSTER_NODES: 'node-b.example:7001,node-c.example',
      LORAFUSE_QUEUE_PREFIX: 'prod',
    });
    assert.equal(config.queuePrefix, '{prod}');
    assert.deepEqual(config.redis, {
      mode: 'cluster',
      nodes: [
        { host: 'node-a.example', port: 7000 },
        { host: 'node-b.example', port: 7001 },
        { host: 'node-c.example', port: 6379 },
      ],
    });
    const plan = redisConnectionPlan(config.redisUrl!, config.redis, { maxRetriesPerRequest: null });
    assert.equal(plan.kind, 'cluster');
    if (plan.kind !== 'cluster') return;
    assert.deepEqual(plan.nodes, config.redis.mode === 'cluster' ? config.redis.nodes : []);
    assert.deepEqual(plan.options.redisOptions, {
      username: 'default',
      password: 'pw',
      tls: {},
      maxRetriesPerRequest: null,
    });
    assert.equal(typeof plan.options.dnsLookup, 'function', 'TLS clusters keep host names');
    // A prefix already in hash-tag form is kept, and is also valid outside cluster mode.
    assert.equal(
      loadConfig({ REDIS_URL: 'redis://a:1', REDIS_CLUSTER: 'true', LORAFUSE_QUEUE_PREFIX: '{x}' })
        .queuePrefix,
      '{x}',
    );
    assert.equal(loadConfig({ LORAFUSE_QUEUE_PREFIX: '{x}' }).queuePrefix, '{x}');
  });

  for (const [env, variable] of [
    [{ REDIS_SENTINELS: 's1:26379', REDIS_SENTINEL_NAME: 'm' }, 'REDIS_URL'],
    [{ REDIS_URL: 'redis://m', REDIS_SENTINELS: 's1:26379' }, 'REDIS_SENTINEL_NAME'],
    [{ REDIS_URL: 'redis://m', REDIS_SENTINELS: 's1:port', REDIS_SENTINEL_NAME: 'm' }, 'REDIS_SENTINELS'],
    [
      { REDIS_URL: 'redis://m', REDIS_SENTINELS: 's1', REDIS_SENTINEL_NAME: 'm', REDIS_CLUSTER: '1' },
      'REDIS_SENTINELS',
    ],
    [{ REDIS_URL: 'redis://a:1/4', REDIS_CLUSTER: 'true' }, 'REDIS_URL'],
    [{ REDIS_URL: 'redis://a:1', REDIS_CLUSTER: 'perhaps' }, 'REDIS_CLUSTER'],
    [{ REDIS_URL: 'redis://a:1', REDIS_CLUSTER_NODES: 'b:99999' }, 'REDIS_CLUSTER_NODES'],
    [{ LORAFUSE_QUEUE_PREFIX: '{a' }, 'LORAFUSE_QUEUE_PREFIX'],
  ] as const) {
    it(`names ${variable} when ${JSON.stringify(env)} is wrong`, () => {
      assert.throws(
        () => loadConfig(env),
        (error: unknown) => error instanceof ConfigError && error.variable === variable,
      );
    });
  }
});
