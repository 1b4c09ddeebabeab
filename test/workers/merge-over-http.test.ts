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
import { createApiRedis, JobService, type JobView, type MergeJobResult } from '../../src/queue/index.ts';
import { ArtifactStore } from '../../src/store/index.ts';
import { Checkpoint } from '../../src/tensors/index.ts';
import { type MergeWorkerHandle, startMergeWorker } from '../../workers/merge-worker.ts';
import { startTestRedis, type TestRedis, tempDir, uniquePrefix } from '../helpers/redis.ts';
import { compareCheckpoints, GOLDEN_TASK_ARITHMETIC, leftoverWorkDirs, waitFor } from './fixtures.ts';

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

  async function upload(name: string): Promise<string> {
    const response = await supertest(app.server)
      .post('/v1/models')
      .attach(
        'model.safetensors',
        path.join(GOLDEN_TASK_ARITHMETIC, `${name}.safetensors`),
        'model.safetensors',
      )
      .expect(201);
    return response.body.id as string;
  }

  it('uploads, merges through the queue and downloads a result equal to mergekit', async () => {
    const ids: Record<string, string> = {};
    for (const name of ['base', 'm0', 'm1', 'm2']) ids[name] = await upload(name);
    const recipe = {
      merge_method: 'task_arithmetic',
      base_model: ids.base,
      models: ['m0', 'm1', 'm2'].map((name) => ({ model: ids[name], parameters: { weight: 1.0 } })),
      parameters: { lambda: 0.7 },
      dtype: 'float32',
    };
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
      settings: { lockDurationMs: 30_000, stalledIntervalMs: 30_000, shutdownGraceMs: 10_000 },
    });
    const done = await waitFor<JobView>(
      'the job to finish',
      async () => {
        const view = (await supertest(app.server).get(`/v1/jobs/${jobId}`).expect(200)).body as JobView;
        return view.state === 'completed' || view.state === 'failed' ? view : null;
      },
      30_000,
    );
    assert.equal(done.state, 'completed', JSON.stringify(done.error));
    const resultId = (done.result as MergeJobResult).artifact.id;
    const download = await supertest(app.server)
      .get(`/v1/models/${resultId}/files/model.safetensors`)
      .buffer(true)
      .parse((response, callback) => {
        const chunks: Buffer[] = [];
        response.on('data', (chunk: Buffer) => chunks.push(chunk));
        response.on('end', () => callback(null, Buffer.concat(chunks)));
      })
      .expect(200);
    const file = path.join(data.dir, 'downloaded.safetensors');
    await writeFile(file, download.body as Buffer);
    const merged = await Checkpoint.openFiles({ 'model.safetensors': file });
    try {
      const { names, worstExcess } = await compareCheckpoints(
        merged,
        path.join(GOLDEN_TASK_ARITHMETIC, 'expected.safetensors'),
        1e-5,
        1e-6,
      );
      assert.equal(names.length, 4);
      assert.ok(worstExcess <= 0, `outside tolerance by ${worstExcess}`);
    } finally {
      await merged.close();
    }
    assert.deepEqual(leftoverWorkDirs(data.dir), []);
    // Finished: the input may go now.
    await supertest(app.server).delete(`/v1/models/${ids.m1}`).expect(204);
  });
});
