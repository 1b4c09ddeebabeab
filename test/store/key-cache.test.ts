// The API's memory of verified keys (src/store/key-cache.ts) and AccessStore's use of it against a real Redis:
// an entry lives ttlMs from the moment its read began, a local revocation drops it at once and keeps a read
// that was in flight from putting it back, a revocation elsewhere is honoured once the bound has passed, and
// the cache holds no more than its cap. The clock is a variable the tests move.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { Redis } from 'ioredis';
import { AccessStore, type ApiKeyRecord, hashToken } from '../../src/store/index.ts';
import { KeyCache } from '../../src/store/key-cache.ts';
import { startTestRedis, type TestRedis, uniquePrefix } from '../helpers/redis.ts';

const record = (id: string): ApiKeyRecord => ({
  id,
  name: '',
  project: 'p',
  scopes: ['read'],
  createdAt: '2026-01-01T00:00:00.000Z',
});

describe('KeyCache', () => {
  it('answers for ttlMs counted from when the read began, then forgets', () => {
    let now = 1000;
    const cache = new KeyCache<ApiKeyRecord>({ ttlMs: 500, now: () => now });
    const read = cache.beginRead();
    now = 1200; // the Redis answer arrives later: the entry still expires at 1000 + 500
    cache.set('h', record('a'), read);
    now = 1499;
    assert.equal(cache.get('h')?.id, 'a');
    now = 1500;
    assert.equal(cache.get('h'), undefined);
    assert.equal(cache.size, 0, 'an expired entry is dropped when met');
  });

  it('drops a forgotten key at once and keeps a read begun before the forget from restoring it', () => {
    let now = 0;
    const cache = new KeyCache<ApiKeyRecord>({ ttlMs: 10_000, now: () => now });
    cache.set('h', record('a'), cache.beginRead());
    const inFlight = cache.beginRead();
    cache.forget('h');
    assert.equal(cache.get('h'), undefined);
    now = 5;
    cache.set('h', record('a'), inFlight);
    assert.equal(cache.get('h'), undefined, 'the stale read is not cached');
    cache.set('h', record('a'), cache.beginRead());
    assert.equal(cache.get('h')?.id, 'a', 'a read begun after the forget is');
  });

  it('holds at most maxEntries, making room by dropping the oldest', () => {
    const cache = new KeyCache<ApiKeyRecord>({ ttlMs: 1000, maxEntries: 2, now: () => 0 });
    for (const name of ['a', 'b', 'c']) cache.set(name, record(name), cache.beginRead());
    assert.equal(cache.size, 2);
    assert.equal(cache.get('a'), undefined);
    assert.equal(cache.get('b')?.id, 'b');
    assert.equal(cache.get('c')?.id, 'c');
  });

  it('keeps nothing with ttlMs 0', () => {
    const cache = new KeyCache<ApiKeyRecord>({ ttlMs: 0, now: () => 0 });
    cache.set('h', record('a'), cache.beginRead());
    assert.equal(cache.size, 0);
  });
});

describe('AccessStore with a key cache', () => {
  let server: TestRedis;
  let redis: Redis;

  before(async () => {
    server = await startTestRedis();
    redis = new Redis(server.url);
  });
  after(async () => {
    redis.disconnect();
    await server.stop();
  });

  /** Counts the HGETs of key records this connection sends. */
  function countLookups(): { count: number } {
    const counter = { count: 0 };
    const original = redis.hget.bind(redis);
    redis.hget = ((...args: Parameters<Redis['hget']>) => {
      if (String(args[0]).endsWith(':access:keys-by-hash')) counter.count++;
      return original(...args);
    }) as Redis['hget'];
    return counter;
  }

  it('reads Redis once per key and interval, and again once the interval has passed', async (t) => {
    const prefix = uniquePrefix('keycache');
    let now = 0;
    const api = new AccessStore(redis, prefix, { keyCacheMs: 5000, now: () => now });
    const { token, key } = await api.createKey({ project: 'p', scopes: ['read'] });
    const lookups = countLookups();
    t.after(() => {
      delete (redis as Partial<Redis>).hget; // the prototype's method again
    });
    for (let i = 0; i < 5; i++) assert.equal((await api.authenticate(token))?.id, key.id);
    assert.equal(lookups.count, 1);
    now = 5000;
    assert.equal((await api.authenticate(token))?.id, key.id);
    assert.equal(lookups.count, 2);
    assert.equal(await api.authenticate(`${token}x`), null, 'an unknown token is refused');
    assert.equal(await api.authenticate(hashToken(token)), null, 'and so is a hash');
  });

  it('refuses a key revoked through it at once, and one revoked by another process once the bound has passed', async () => {
    const prefix = uniquePrefix('keycache');
    let now = 0;
    const api = new AccessStore(redis, prefix, { keyCacheMs: 5000, now: () => now });
    const cli = new AccessStore(redis, prefix); // `lorafuse keys revoke`, or another API replica
    const local = await api.createKey({ project: 'p', scopes: ['read'] });
    const remote = await api.createKey({ project: 'p', scopes: ['read'] });
    assert.ok(await api.authenticate(local.token));
    assert.ok(await api.authenticate(remote.token));

    await api.revokeKey(local.key.id);
    assert.equal(await api.authenticate(local.token), null, 'revoked here: refused at once');

    await cli.revokeKey(remote.key.id);
    now = 4999;
    assert.ok(await api.authenticate(remote.token), 'revoked elsewhere: still known within the bound');
    now = 5000;
    assert.equal(await api.authenticate(remote.token), null, 'refused once the bound has passed');
    assert.equal(
      await cli.authenticate(remote.token),
      null,
      'a store without a cache reads Redis every time',
    );
  });
});
