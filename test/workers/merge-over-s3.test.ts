// The merge path end to end with S3 storage: golden inputs uploaded through the real app into a real
// S3-compatible server (s3rver on loopback), a task_arithmetic job run by a real sandboxed worker
// that reads its inputs with ranged GETs and publishes the result with a multipart upload, the
// result downloaded over HTTP and equal to mergekit's. Nothing lands in the local blob directory.
import assert from 'node:assert/strict';
import { readdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { after, afterEach, before, beforeEach, describe, it } from 'node:test';
import supertest from 'supertest';
import { buildApp, type LorafuseApp } from '../../src/api/index.ts';
import { loadConfig } from '../../src/config.ts';
import { createApiRedis, JobService, type MergeJobResult } from '../../src/queue/index.ts';
import { ArtifactStore, createBlobStore, S3BlobStore } from '../../src/store/index.ts';
import { type MergeWorkerHandle, startMergeWorker } from '../../workers/merge-worker.ts';
import { startTestRedis, type TestRedis, tempDir, uniquePrefix } from '../helpers/redis.ts';
import { startTestS3, type TestS3 } from '../helpers/s3.ts';
import { assertGoldenTaskArithmetic, goldenTaskArithmeticRecipe, leftoverWorkDirs } from './fixtures.ts';
import { downloadBytes, finishedOverHttp, IN_PROCESS_WORKER_SETTINGS, uploadGolden } from './http-merge.ts';

describe('merge over HTTP with S3 blob storage', () => {
  let server: TestRedis;
  let s3: TestS3;
  let prefix: string;
  let data: { dir: string; remove(): void };
  let app: LorafuseApp;
  let store: ArtifactStore;
  let worker: MergeWorkerHandle | undefined;
  const saved: Record<string, string | undefined> = {};

  before(async () => {
    server = await startTestRedis();
    s3 = await startTestS3();
  });
  after(async () => {
    await server.stop();
    await s3.stop();
  });
  beforeEach(async () => {
    prefix = uniquePrefix('s3http');
    data = tempDir('lorafuse-s3http');
    // The sandboxed processor reads its settings from the environment it inherits.
    const env = s3.env(`${prefix}/`);
    for (const [name, value] of Object.entries(env)) {
      saved[name] = process.env[name];
      process.env[name] = value;
    }
    const config = loadConfig({
      ...env,
      LORAFUSE_DATA_DIR: data.dir,
      LORAFUSE_QUEUE_PREFIX: prefix,
      REDIS_URL: server.url,
      // Not about access: the API runs with auth off (test/api/auth.test.ts covers it).
      LORAFUSE_AUTH: 'false',
    });
    assert.equal(config.blobStore.kind, 's3');
    const redis = createApiRedis(server.url);
    store = new ArtifactStore({ redis, dataDir: data.dir, prefix, blobs: createBlobStore(config) });
    app = await buildApp({ config, redis, store, jobs: new JobService({ redis, prefix }), logger: false });
    worker = undefined;
  });
  afterEach(async () => {
    await worker?.close(10_000);
    await app.close();
    data.remove();
    for (const [name, value] of Object.entries(saved)) {
      if (value === undefined) delete process.env[name];
      else process.env[name] = value;
    }
  });

  it('stores uploads in the bucket, merges from it and serves the result from it', async () => {
    const ids: Record<string, string> = {};
    for (const name of ['base', 'm0', 'm1', 'm2']) ids[name] = await uploadGolden(app, name);
    assert.ok(store.blobs instanceof S3BlobStore);
    assert.equal((await store.blobs.list()).length, 4);
    const ready = await supertest(app.server).get('/readyz').expect(200);
    assert.equal(ready.body.checks.blobStore, 'ok');

    const recipe = goldenTaskArithmeticRecipe(ids);
    const submitted = await supertest(app.server).post('/v1/merges').send(recipe).expect(202);
    const jobId = submitted.body.id as string;
    worker = startMergeWorker({
      redisUrl: server.url,
      prefix,
      dataDir: data.dir,
      concurrency: 1,
      settings: IN_PROCESS_WORKER_SETTINGS,
    });
    const done = await finishedOverHttp(app, jobId);
    assert.equal(done.state, 'completed', JSON.stringify(done.error));
    const resultId = (done.result as MergeJobResult).artifact.id;
    const record = await store.get(resultId);
    const blobs = await store.blobs.list();
    for (const file of record!.files) assert.ok(blobs.includes(file.sha256), `${file.name} is in the bucket`);

    const download = await downloadBytes(app, `/v1/models/${resultId}/files/model.safetensors`);
    const file = path.join(data.dir, 'downloaded.safetensors');
    await writeFile(file, download);
    await assertGoldenTaskArithmetic(file);
    const ranged = await downloadBytes(app, `/v1/models/${resultId}/files/model.safetensors`, {
      range: 'bytes=0-7',
      status: 206,
    });
    assert.deepEqual(ranged, download.subarray(0, 8));

    assert.deepEqual(leftoverWorkDirs(data.dir), []);
    assert.deepEqual(await readdir(path.join(data.dir, 'blobs')).catch(() => []), []);
    // Deleting every record empties the bucket: reference counts hold on S3 too.
    for (const id of [...Object.values(ids), resultId]) {
      await supertest(app.server).delete(`/v1/models/${id}`).expect(204);
    }
    assert.deepEqual(await store.blobs.listKeys(), []);
  });
});
