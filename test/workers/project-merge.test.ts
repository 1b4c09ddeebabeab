// A job belongs to the project that queued it, end to end: with auth on, a project's key uploads the golden
// task_arithmetic inputs and queues the merge; a real sandboxed worker writes the result under that project.
// The result (and the job) are that project's: another project's key gets 404 for both, and the
// default project's store does not list it. The numbers are mergekit's (rtol 1e-5, atol 1e-6).
import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import supertest from 'supertest';
import { buildApp, type LorafuseApp } from '../../src/api/index.ts';
import { loadConfig } from '../../src/config.ts';
import { createApiRedis, JobService, type JobView, type MergeJobResult } from '../../src/queue/index.ts';
import { AccessStore, ArtifactStore } from '../../src/store/index.ts';
import { Checkpoint } from '../../src/tensors/index.ts';
import { type MergeWorkerHandle, startMergeWorker } from '../../workers/merge-worker.ts';
import { startTestRedis, type TestRedis, tempDir, uniquePrefix } from '../helpers/redis.ts';
import { compareCheckpoints, GOLDEN_TASK_ARITHMETIC, waitFor } from './fixtures.ts';

describe('a merge queued by a project is written under that project', () => {
  let server: TestRedis;
  let data: { dir: string; remove(): void };
  let app: LorafuseApp;
  let store: ArtifactStore;
  let worker: MergeWorkerHandle;
  let owner: string;
  let stranger: string;

  before(async () => {
    server = await startTestRedis();
    data = tempDir('lorafuse-project-merge');
    const prefix = uniquePrefix('project');
    const config = loadConfig({
      LORAFUSE_DATA_DIR: data.dir,
      LORAFUSE_QUEUE_PREFIX: prefix,
      REDIS_URL: server.url,
    });
    assert.equal(config.access.authEnabled, true, 'auth is on by default');
    const redis = createApiRedis(server.url);
    store = new ArtifactStore({ redis, dataDir: data.dir, prefix });
    app = await buildApp({ config, redis, store, jobs: new JobService({ redis, prefix }), logger: false });
    const access = new AccessStore(redis, prefix);
    owner = (await access.createKey({ project: 'team-a', scopes: ['read', 'write'] })).token;
    stranger = (await access.createKey({ project: 'team-b', scopes: ['read', 'write'] })).token;
    worker = startMergeWorker({
      redisUrl: server.url,
      prefix,
      dataDir: data.dir,
      concurrency: 1,
      settings: { lockDurationMs: 30_000, stalledIntervalMs: 30_000, shutdownGraceMs: 10_000 },
    });
  });
  after(async () => {
    await worker.close(10_000);
    await app.close();
    data.remove();
    await server.stop();
  });

  async function upload(name: string): Promise<string> {
    const response = await supertest(app.server)
      .post('/v1/models')
      .set('authorization', `Bearer ${owner}`)
      .attach(
        'model.safetensors',
        path.join(GOLDEN_TASK_ARITHMETIC, `${name}.safetensors`),
        'model.safetensors',
      )
      .expect(201);
    return response.body.id as string;
  }

  it('runs the job for its project and stores the result there only', async () => {
    const ids: Record<string, string> = {};
    for (const name of ['base', 'm0', 'm1', 'm2']) ids[name] = await upload(name);
    const recipe = {
      merge_method: 'task_arithmetic',
      base_model: ids.base,
      models: ['m0', 'm1', 'm2'].map((name) => ({ model: ids[name], parameters: { weight: 1.0 } })),
      parameters: { lambda: 0.7 },
      dtype: 'float32',
    };
    const submitted = await supertest(app.server)
      .post('/v1/merges')
      .set('authorization', `Bearer ${owner}`)
      .send(recipe)
      .expect(202);
    const jobId = submitted.body.id as string;
    const done = await waitFor<JobView>(
      'the job to finish',
      async () => {
        const view = (
          await supertest(app.server)
            .get(`/v1/jobs/${jobId}`)
            .set('authorization', `Bearer ${owner}`)
            .expect(200)
        ).body as JobView;
        return view.state === 'completed' || view.state === 'failed' ? view : null;
      },
      120_000,
    );
    assert.equal(done.state, 'completed', JSON.stringify(done.error));
    const resultId = (done.result as MergeJobResult).artifact.id;

    const record = await supertest(app.server)
      .get(`/v1/models/${resultId}`)
      .set('authorization', `Bearer ${owner}`)
      .expect(200);
    assert.equal(record.body.project, 'team-a');
    assert.equal(record.body.lineage.jobId, jobId);
    // Another project sees neither the job nor its result; the default project's store does not list it.
    await supertest(app.server)
      .get(`/v1/jobs/${jobId}`)
      .set('authorization', `Bearer ${stranger}`)
      .expect(404);
    await supertest(app.server)
      .get(`/v1/models/${resultId}`)
      .set('authorization', `Bearer ${stranger}`)
      .expect(404);
    assert.equal(await store.get(resultId), null);
    assert.equal((await store.forProject('team-a').get(resultId))?.id, resultId);
    assert.ok(!(await store.list('model', { limit: 100 })).items.some((item) => item.id === resultId));

    const download = await supertest(app.server)
      .get(`/v1/models/${resultId}/files/model.safetensors`)
      .set('authorization', `Bearer ${owner}`)
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
      const { worstExcess } = await compareCheckpoints(
        merged,
        path.join(GOLDEN_TASK_ARITHMETIC, 'expected.safetensors'),
        1e-5,
        1e-6,
      );
      assert.ok(worstExcess <= 0, `outside tolerance by ${worstExcess}`);
    } finally {
      await merged.close();
    }
  });
});
