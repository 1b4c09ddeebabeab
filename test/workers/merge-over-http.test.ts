// The "done when" over HTTP: golden inputs uploaded to the real app, a task_arithmetic job
// queued with POST /v1/merges, processed by a real sandboxed worker, the result downloaded and
// equal to mergekit's within rtol 1e-5 / atol 1e-6. Inputs of a pending job cannot be deleted.
import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { after, afterEach, before, beforeEach, describe, it } from 'node:test';
import supertest from 'supertest';
import { buildApp, type LorafuseApp } from '../../src/api/index.ts';
import { loadConfig } from '../../src/config.ts';
import { createApiRedis, JobService, type MergeJobResult } from '../../src/queue/index.ts';
import { ArtifactStore } from '../../src/store/index.ts';
import { type MergeWorkerHandle, startMergeWorker } from '../../workers/merge-worker.ts';
import { startTestRedis, type TestRedis, tempDir, uniquePrefix } from '../helpers/redis.ts';
import { assertGoldenTaskArithmetic, goldenTaskArithmeticRecipe, leftoverWorkDirs } from './fixtures.ts';
import { downloadBytes, finishedOverHttp, IN_PROCESS_WORKER_SETTINGS, uploadGolden } from './http-merge.ts';

describe('merge over HTTP (buildApp + sandboxed worker)', () => {
  let server: TestRedis;
  let prefix: string;
  let data: { dir: string; remove(): void };
  let app: LorafuseApp;
  let worker: MergeWorkerHandle | undefined;

  before(async () => {
    server = await startTestRedis();
  });
  after(async () => {
    await server.stop();
  });
  beforeEach(async () => {
    prefix = uniquePrefix('http');
    data = tempDir('lorafuse-http');
    const config = loadConfig({
      LORAFUSE_DATA_DIR: data.dir,
      LORAFUSE_QUEUE_PREFIX: prefix,
      REDIS_URL: server.url,
      // Not about access: the API runs with auth off (test/api/auth.test.ts covers it).
      LORAFUSE_AUTH: 'false',
    });
    const redis = createApiRedis(server.url);
    const store = new ArtifactStore({ redis, dataDir: data.dir, prefix });
    await store.init();
    app = await buildApp({ config, redis, store, jobs: new JobService({ redis, prefix }), logger: false });
    worker = undefined;
  });
  afterEach(async () => {
    await worker?.close(10_000);
    await app.close();
    data.remove();
  });

  it('uploads, merges through the queue and downloads a result equal to mergekit', async () => {
    const ids: Record<string, string> = {};
    for (const name of ['base', 'm0', 'm1', 'm2']) ids[name] = await uploadGolden(app, name);
    const recipe = goldenTaskArithmeticRecipe(ids);
    const submitted = await supertest(app.server).post('/v1/merges').send(recipe).expect(202);
    const jobId = submitted.body.id as string;
    assert.equal(submitted.body.state, 'queued');

    // While the job waits, its inputs cannot be deleted.
    const refused = await supertest(app.server).delete(`/v1/models/${ids.m1}`).expect(409);
    assert.deepEqual(refused.body.jobs, [jobId]);

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
    const download = await downloadBytes(app, `/v1/models/${resultId}/files/model.safetensors`);
    const file = path.join(data.dir, 'downloaded.safetensors');
    await writeFile(file, download);
    await assertGoldenTaskArithmetic(file);
    assert.deepEqual(leftoverWorkDirs(data.dir), []);
    // Finished: the input may go now.
    await supertest(app.server).delete(`/v1/models/${ids.m1}`).expect(204);
  });
});
