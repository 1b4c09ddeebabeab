import assert from 'node:assert/strict';
import { cpSync } from 'node:fs';
import path from 'node:path';
import { after, afterEach, before, beforeEach, describe, it } from 'node:test';
import type { JobService, MergeJobResult } from '../../src/queue/index.ts';
import type { ArtifactStore } from '../../src/store/index.ts';
import { Checkpoint } from '../../src/tensors/index.ts';
import { type MergeWorkerHandle, startMergeWorker } from '../../workers/merge-worker.ts';
import { startTestRedis, type TestRedis } from '../helpers/redis.ts';
import { HANG_GUARD_MS } from '../helpers/wait.ts';
import {
  assertGoldenTaskArithmetic,
  bigModels,
  GOLDEN_TASK_ARITHMETIC,
  goldenTaskArithmetic,
  leftoverWorkDirs,
  waitFor,
  waitForState,
  type JobWorld,
  openJobWorld,
} from './fixtures.ts';

const SETTINGS = { lockDurationMs: 30_000, stalledIntervalMs: 30_000, shutdownGraceMs: 10_000 };

describe('merge worker (sandboxed processor, real Redis)', () => {
  let server: TestRedis;
  let world: JobWorld;
  let prefix: string;
  let data: { dir: string; remove(): void };
  let store: ArtifactStore;
  let jobs: JobService;
  let worker: MergeWorkerHandle | undefined;

  before(async () => {
    server = await startTestRedis();
  });
  after(async () => {
    await server.stop();
  });
  beforeEach(async () => {
    world = await openJobWorld(server.url, 'worker');
    ({ prefix, data, store, jobs } = world);
    worker = undefined;
  });
  afterEach(async () => {
    await worker?.close(10_000);
    await world.close();
  });

  function start(): MergeWorkerHandle {
    worker = startMergeWorker({
      redisUrl: server.url,
      prefix,
      dataDir: data.dir,
      concurrency: 1,
      settings: SETTINGS,
    });
    return worker;
  }

  it('merges the golden task_arithmetic case into an artifact equal to mergekit within 1e-5/1e-6', async () => {
    const payload = await goldenTaskArithmetic(store, data.dir);
    start();
    const queued = await jobs.enqueueMerge(payload);
    const done = await waitForState(jobs, queued.id, ['completed', 'failed']);
    assert.equal(done.state, 'completed', JSON.stringify(done.error));
    const result = done.result as MergeJobResult;
    assert.equal(result.artifact.kind, 'model');
    assert.deepEqual(done.progress, { phase: 'done', tensorsDone: 4, tensorsTotal: 4 });
    const record = await store.get(result.artifact.id);
    assert.ok(record);
    assert.equal(record.lineage?.jobId, queued.id);
    assert.deepEqual(
      record.lineage?.parents.map((parent) => parent.id),
      payload.inputs,
    );
    assert.deepEqual(record.lineage?.recipe, payload.recipe);
    await assertGoldenTaskArithmetic(store.filePaths(record)['model.safetensors']);
    assert.deepEqual(leftoverWorkDirs(data.dir), []);
  });

  it('merges PEFT adapters (peft_cat) into an adapter artifact whose delta equals PEFT within 1e-5/1e-6', async () => {
    const golden = path.resolve(GOLDEN_TASK_ARITHMETIC, '../peft_cat');
    const ids: string[] = [];
    for (const name of ['a0', 'a1', 'a2_r8']) {
      const dir = path.join(data.dir, `adapter-${name}`);
      cpSync(path.join(golden, 'adapters', name), dir, { recursive: true });
      ids.push((await store.ingestDirectory('adapter', dir, { parents: [], lorafuseVersion: '0' })).id);
    }
    const weights = [1.0, 0.6, 0.4];
    start();
    const queued = await jobs.enqueueMerge({
      recipe: {
        merge_method: 'peft_cat',
        models: ids.map((adapter, i) => ({ adapter, parameters: { weight: weights[i] } })),
      },
      inputs: ids,
      seed: 0,
    });
    const done = await waitForState(jobs, queued.id, ['completed', 'failed']);
    assert.equal(done.state, 'completed', JSON.stringify(done.error));
    const result = done.result as MergeJobResult;
    assert.equal(result.artifact.kind, 'adapter');
    const record = await store.get(result.artifact.id);
    assert.ok(record);
    assert.equal(record.rank, 16);
    const config = record.config as { r: number; lora_alpha: number };
    const scaling = config.lora_alpha / config.r;
    const paths = store.filePaths(record);
    const merged = await Checkpoint.openFiles(paths, 'adapter_model');
    const expected = await Checkpoint.openFiles({
      'model.safetensors': path.join(golden, 'expected', 'delta.safetensors'),
    });
    try {
      const modules = [0, 1].flatMap((l) =>
        ['q_proj', 'v_proj'].map((p) => `model.layers.${l}.self_attn.${p}`),
      );
      for (const module of modules) {
        const keyA = `base_model.model.${module}.lora_A.weight`;
        const keyB = `base_model.model.${module}.lora_B.weight`;
        const a = await merged.readFloat32(keyA);
        const b = await merged.readFloat32(keyB);
        const [out, r] = merged.info(keyB).shape;
        const inF = merged.info(keyA).shape[1];
        const want = await expected.readFloat32(`${module}.weight`);
        for (let o = 0; o < out; o++) {
          for (let i = 0; i < inF; i++) {
            let sum = 0;
            for (let k = 0; k < r; k++) sum += b[o * r + k] * a[k * inF + i];
            const got = scaling * sum;
            const ref = want[o * inF + i];
            assert.ok(
              Math.abs(got - ref) <= 1e-6 + 1e-5 * Math.abs(ref),
              `${module}[${o},${i}]: ${got} vs ${ref}`,
            );
          }
        }
      }
    } finally {
      await merged.close();
      await expected.close();
    }
  });

  it('fails a job naming a missing artifact at once, with its error kind, and stores nothing', async () => {
    const payload = await goldenTaskArithmetic(store, data.dir);
    const missing = 'mdl_01jzzzzzzzzzzzzzzzzzzzzzzz';
    payload.recipe.models[0].model = missing;
    start();
    const before = await store.count('model');
    const queued = await jobs.enqueueMerge(payload);
    const failed = await waitForState(jobs, queued.id, ['completed', 'failed']);
    assert.equal(failed.state, 'failed');
    assert.equal(failed.error?.type, 'artifact_not_found', failed.error?.message);
    assert.match(failed.error?.message ?? '', new RegExp(missing));
    assert.equal(failed.attempts, 1, 'bad input is not retried');
    assert.equal(await store.count('model'), before);
    assert.deepEqual(leftoverWorkDirs(data.dir), []);
  });

  it('fails a recipe with an unknown method as invalid input', async () => {
    const payload = await goldenTaskArithmetic(store, data.dir);
    (payload.recipe as Record<string, unknown>).merge_method = 'no_such_method';
    start();
    const queued = await jobs.enqueueMerge(payload);
    const failed = await waitForState(jobs, queued.id, ['completed', 'failed']);
    assert.equal(failed.state, 'failed');
    assert.equal(failed.error?.type, 'invalid_input');
    assert.equal(failed.attempts, 1);
  });

  it('cancels a running merge between tensors: cancelled, no artifact, no work folder', async () => {
    const payload = await bigModels(store, data.dir, { models: 4, tensors: 24, rows: 512, cols: 1024 });
    const before = await store.count('model');
    start();
    const queued = await jobs.enqueueMerge(payload);
    await waitFor('merging progress', async () => {
      const view = await jobs.get(queued.id);
      return view?.state === 'active' && (view.progress?.tensorsDone as number) > 0;
    });
    const requested = await jobs.cancel(queued.id);
    assert.ok(requested.state === 'active' || requested.state === 'cancelled');
    const cancelled = await waitForState(jobs, queued.id, ['cancelled', 'completed', 'failed']);
    assert.equal(cancelled.state, 'cancelled');
    const progress = cancelled.progress as { tensorsDone: number; tensorsTotal: number };
    assert.ok(progress.tensorsDone < progress.tensorsTotal, 'stopped before the end');
    assert.equal(await store.count('model'), before, 'no artifact was made');
    await waitFor('the work folder to go', async () => leftoverWorkDirs(data.dir).length === 0);
  });

  it('closes gracefully: the active job finishes before close resolves', async () => {
    const payload = await bigModels(store, data.dir, { models: 3, tensors: 8, rows: 256, cols: 512 });
    const handle = start();
    const queued = await jobs.enqueueMerge(payload);
    await waitForState(jobs, queued.id, ['active']);
    assert.equal(await handle.close(HANG_GUARD_MS), true, 'the active job finished within the grace period');
    const view = await jobs.get(queued.id);
    assert.equal(view?.state, 'completed');
    assert.deepEqual(leftoverWorkDirs(data.dir), []);
  });
});
