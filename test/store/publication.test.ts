// A job's result is published once per job and only under its lock (src/store/publication.ts): a
// second publication returns the first record, a publication whose guard no longer holds its token
// stores nothing (no record, no index entry, no blob), and a deleted result can be published anew.
import assert from 'node:assert/strict';
import { after, before, beforeEach, describe, it } from 'node:test';
import { Redis } from 'ioredis';
import {
  ArtifactStore,
  LORAFUSE_VERSION,
  type Publication,
  StalePublicationError,
} from '../../src/store/index.ts';
import { startTestRedis, tempDir, type TestRedis, uniquePrefix } from '../helpers/redis.ts';
import { diskState, writeModelFolder } from './fixtures.ts';

const lineage = { parents: [], jobId: 'job_p', lorafuseVersion: LORAFUSE_VERSION };

describe('job-scoped publication', () => {
  let server: TestRedis;
  let redis: Redis;
  let store: ArtifactStore;
  let prefix: string;
  const data = tempDir('lorafuse-publication');

  before(async () => {
    server = await startTestRedis();
    redis = new Redis(server.url);
  });
  beforeEach(async () => {
    prefix = uniquePrefix('publication');
    store = new ArtifactStore({ redis, dataDir: `${data.dir}/${prefix}`, prefix });
    await store.init();
  });
  after(async () => {
    redis.disconnect();
    await server.stop();
    data.remove();
  });

  function publication(guard?: Publication['guard']): Publication {
    return { key: `${prefix}:published:job_p:result`, ttlSeconds: 60, guard };
  }

  it('a second publication for the same job returns the first record and stores nothing more', async () => {
    const first = await store.ingestDirectory(
      'model',
      await writeModelFolder(`${data.dir}/${prefix}-a`),
      lineage,
      {
        publication: publication(),
      },
    );
    const again = await store.ingestDirectory(
      'model',
      await writeModelFolder(`${data.dir}/${prefix}-b`),
      lineage,
      { publication: publication() },
    );
    assert.equal(again.id, first.id);
    assert.deepEqual(again, first);
    assert.equal(await store.count('model'), 1);
    for (const file of first.files) assert.equal(await store.referenceCount(file.sha256), 1, file.name);
    assert.ok((await redis.ttl(`${prefix}:published:job_p:result`)) > 0, 'the publication key expires');
  });

  it('an attempt whose lock is gone or held by another attempt publishes nothing', async () => {
    const lock = `${prefix}:merge:job_p:lock`;
    for (const holder of [null, 'token-of-the-next-attempt']) {
      if (holder === null) await redis.del(lock);
      else await redis.set(lock, holder);
      const folder = await writeModelFolder(`${data.dir}/${prefix}-${holder ?? 'none'}`, { offset: 7 });
      await assert.rejects(
        store.ingestDirectory('model', folder, lineage, {
          publication: publication({ key: lock, token: 'token-of-this-attempt' }),
        }),
        StalePublicationError,
      );
      assert.equal(await store.count('model'), 0);
      assert.deepEqual(await diskState(store.dataDir), { blobs: [], tmp: [] }, 'no blob stays behind');
      assert.equal(await redis.exists(`${prefix}:published:job_p:result`), 0);
    }
    await redis.set(lock, 'token-of-this-attempt');
    const stored = await store.ingestDirectory(
      'model',
      await writeModelFolder(`${data.dir}/${prefix}-held`, { offset: 7 }),
      lineage,
      { publication: publication({ key: lock, token: 'token-of-this-attempt' }) },
    );
    assert.equal(await store.count('model'), 1);
    assert.equal(await redis.get(`${prefix}:published:job_p:result`), stored.id);
  });

  it('once the published artifact is deleted, the job can publish again', async () => {
    const first = await store.ingestDirectory(
      'model',
      await writeModelFolder(`${data.dir}/${prefix}-1`),
      lineage,
      {
        publication: publication(),
      },
    );
    assert.equal(await store.delete(first.id), true);
    const second = await store.ingestDirectory(
      'model',
      await writeModelFolder(`${data.dir}/${prefix}-2`),
      lineage,
      { publication: publication() },
    );
    assert.notEqual(second.id, first.id);
    assert.equal(await store.count('model'), 1);
  });
});
