// Shared setup of the worker tests: a store over a temp data dir, golden inputs ingested as model
// artifacts, synthetic models big enough to take a few seconds, and polling helpers.
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { copyFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { Redis } from 'ioredis';
import { createApiRedis, JobService, type JobView } from '../../src/queue/index.ts';
import { ArtifactStore, LORAFUSE_VERSION } from '../../src/store/index.ts';
import { Checkpoint, writeSafetensors } from '../../src/tensors/index.ts';
import { goldenCaseDir } from '../helpers/golden.ts';
import { tempDir, uniquePrefix } from '../helpers/redis.ts';
import { waitFor } from '../helpers/wait.ts';

export const GOLDEN_TASK_ARITHMETIC = goldenCaseDir('mergekit_task_arithmetic');

export async function ingestModelFile(store: ArtifactStore, scratch: string, file: string): Promise<string> {
  const dir = path.join(scratch, `in-${path.basename(file, '.safetensors')}-${Date.now()}`);
  mkdirSync(dir, { recursive: true });
  await copyFile(file, path.join(dir, 'model.safetensors'));
  const record = await store.ingestDirectory('model', dir, {
    parents: [],
    lorafuseVersion: LORAFUSE_VERSION,
  });
  return record.id;
}

/** The golden task_arithmetic case stored as artifacts, and its recipe naming them. */
export async function goldenTaskArithmetic(store: ArtifactStore, scratch: string) {
  const ids: Record<string, string> = {};
  for (const name of ['base', 'm0', 'm1', 'm2']) {
    ids[name] = await ingestModelFile(
      store,
      scratch,
      path.join(GOLDEN_TASK_ARITHMETIC, `${name}.safetensors`),
    );
  }
  return { recipe: goldenTaskArithmeticRecipe(ids), inputs: Object.values(ids), seed: 1 };
}

/** The golden task_arithmetic recipe over stored ids of base, m0, m1 and m2. */
export function goldenTaskArithmeticRecipe(ids: Record<string, string>) {
  return {
    merge_method: 'task_arithmetic',
    base_model: ids.base,
    models: ['m0', 'm1', 'm2'].map((name) => ({ model: ids[name], parameters: { weight: 1.0 } })),
    parameters: { lambda: 0.7 },
    dtype: 'float32',
  };
}

/** Generated model files, written once per test process and shared by its tests. */
const generated = new Map<string, string[]>();
let generatedDir: string | undefined;

async function bigModelFiles(options: { models: number; tensors: number; rows: number; cols: number }) {
  const key = JSON.stringify(options);
  const cached = generated.get(key);
  if (cached) return cached;
  if (!generatedDir) {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'lorafuse-big-'));
    generatedDir = dir;
    process.once('exit', () => rmSync(dir, { recursive: true, force: true }));
  }
  const files: string[] = [];
  for (let m = 0; m < options.models; m++) {
    const file = path.join(generatedDir, `big-${generated.size}-${m}.safetensors`);
    const tensors = [];
    for (let t = 0; t < options.tensors; t++) {
      const data = new Float32Array(options.rows * options.cols);
      // A cheap deterministic spread of positive and negative values, different per model and tensor.
      for (let i = 0; i < data.length; i++)
        data[i] = (((i * 2654435761 + m * 97 + t * 13) >>> 0) % 2001) / 1000 - 1;
      tensors.push({
        name: `layers.${t}.weight`,
        dtype: 'F32' as const,
        shape: [options.rows, options.cols],
        data,
      });
    }
    await writeSafetensors(file, tensors);
    files.push(file);
  }
  generated.set(key, files);
  return files;
}

/** Models of `tensors` F32 tensors of `rows`x`cols` and a ties recipe over them: a merge that takes a while. */
export async function bigModels(
  store: ArtifactStore,
  scratch: string,
  options: { models: number; tensors: number; rows: number; cols: number },
) {
  const ids: string[] = [];
  for (const file of await bigModelFiles(options)) ids.push(await ingestModelFile(store, scratch, file));
  const recipe = {
    merge_method: 'ties',
    base_model: ids[0],
    models: ids.slice(1).map((id) => ({ model: id, parameters: { weight: 0.5, density: 0.5 } })),
    parameters: { lambda: 1.0 },
    dtype: 'float32',
  };
  return { recipe, inputs: ids, seed: 3 };
}

export { waitFor };

export function waitForState(jobs: JobService, id: string, states: string[], timeoutMs?: number) {
  return waitFor<JobView>(
    `job ${id} to be ${states.join(' or ')}`,
    async () => {
      const view = await jobs.get(id);
      return view && states.includes(view.state) ? view : null;
    },
    timeoutMs,
  );
}

/** Largest |a-b| - (atol + rtol|b|) over every tensor: <= 0 means within tolerance. */
export async function compareCheckpoints(
  actual: Checkpoint,
  expectedFile: string,
  rtol: number,
  atol: number,
): Promise<{ names: string[]; worstExcess: number }> {
  const expected = await Checkpoint.openFiles({ 'model.safetensors': expectedFile });
  try {
    let worstExcess = Number.NEGATIVE_INFINITY;
    for (const name of expected.names()) {
      const a = await actual.readFloat32(name);
      const b = await expected.readFloat32(name);
      if (a.length !== b.length) throw new Error(`${name}: ${a.length} values, expected ${b.length}`);
      for (let i = 0; i < a.length; i++) {
        worstExcess = Math.max(worstExcess, Math.abs(a[i] - b[i]) - (atol + rtol * Math.abs(b[i])));
      }
    }
    return { names: expected.names().sort(), worstExcess };
  } finally {
    await expected.close();
  }
}

export function leftoverWorkDirs(dataDir: string): string[] {
  try {
    return readdirSync(path.join(dataDir, 'tmp')).filter((name) => name.startsWith('job-'));
  } catch {
    return [];
  }
}

export type { Redis };

/** One test's own world on a shared redis-server: a unique key prefix, a data directory, the store and job service. */
export interface JobWorld {
  prefix: string;
  data: { dir: string; remove(): void };
  redis: Redis;
  store: ArtifactStore;
  jobs: JobService;
  close(): Promise<void>;
}

export async function openJobWorld(redisUrl: string, label: string): Promise<JobWorld> {
  const prefix = uniquePrefix(label);
  const data = tempDir(`lorafuse-${label}`);
  const redis = createApiRedis(redisUrl);
  const store = new ArtifactStore({ redis, dataDir: data.dir, prefix });
  await store.init();
  const jobs = new JobService({ redis, prefix });
  return {
    prefix,
    data,
    redis,
    store,
    jobs,
    async close() {
      await jobs.close();
      redis.disconnect();
      data.remove();
    },
  };
}

/** The merged file equals mergekit's golden output within rtol 1e-5 / atol 1e-6, all four tensors. */
export async function assertGoldenTaskArithmetic(file: string): Promise<void> {
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
}
