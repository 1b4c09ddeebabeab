// Issue 3's "done when" over the service: every golden merge case that ships an expected result goes
// through POST /v1/merges with its own recipe (file names replaced by the ids of the uploaded files),
// is processed by a real sandboxed worker, and the downloaded result is compared at the case's tolerance.
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import supertest from 'supertest';
import { parse as parseYaml } from 'yaml';
import { buildApp, type LorafuseApp } from '../../src/api/index.ts';
import { loadConfig } from '../../src/config.ts';
import { createApiRedis, JobService, type MergeJobResult } from '../../src/queue/index.ts';
import { ArtifactStore } from '../../src/store/index.ts';
import { Checkpoint } from '../../src/tensors/index.ts';
import { type MergeWorkerHandle, startMergeWorker } from '../../workers/merge-worker.ts';
import { GOLDEN_DIR } from '../helpers/golden.ts';
import { startTestRedis, type TestRedis, tempDir, uniquePrefix } from '../helpers/redis.ts';
import { compareCheckpoints, leftoverWorkDirs } from './fixtures.ts';
import { downloadBytes, finishedOverHttp, IN_PROCESS_WORKER_SETTINGS } from './http-merge.ts';

interface IndexCase {
  case: string;
  kind: string;
  recipe?: string;
  expected?: string | null;
  tolerance?: { rtol: number; atol: number } | string;
}

const index = JSON.parse(readFileSync(path.join(GOLDEN_DIR, 'index.json'), 'utf8')) as { cases: IndexCase[] };
const mergekitCases = index.cases.filter((c) => c.kind === 'mergekit' && c.expected && c.recipe);

describe('golden merge cases through POST /v1/merges and a sandboxed worker', () => {
  let server: TestRedis;
  let data: { dir: string; remove(): void };
  let app: LorafuseApp;
  let worker: MergeWorkerHandle;
  let downloads = 0;

  before(async () => {
    server = await startTestRedis();
    data = tempDir('lorafuse-golden-http');
    const prefix = uniquePrefix('golden');
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
    worker = startMergeWorker({
      redisUrl: server.url,
      prefix,
      dataDir: data.dir,
      concurrency: 1,
      settings: IN_PROCESS_WORKER_SETTINGS,
    });
  });
  after(async () => {
    await worker.close(10_000);
    await app.close();
    await server.stop();
    data.remove();
  });

  async function uploadModel(file: string): Promise<string> {
    const response = await supertest(app.server)
      .post('/v1/models')
      .attach('model.safetensors', file, 'model.safetensors')
      .expect(201);
    return response.body.id as string;
  }

  async function uploadAdapter(dir: string): Promise<string> {
    const request = supertest(app.server).post('/v1/adapters');
    for (const name of readdirSync(dir)) request.attach(name, path.join(dir, name), name);
    const response = await request.expect(201);
    return response.body.id as string;
  }

  async function runMerge(recipe: Record<string, unknown>): Promise<{ kind: string; id: string }> {
    const submitted = await supertest(app.server).post('/v1/merges').send(recipe).expect(202);
    const done = await finishedOverHttp(app, submitted.body.id);
    assert.equal(done.state, 'completed', JSON.stringify(done.error));
    return (done.result as MergeJobResult).artifact;
  }

  async function download(kind: string, id: string, name: string): Promise<string> {
    const bytes = await downloadBytes(app, `/v1/${kind}s/${id}/files/${name}`);
    downloads += 1;
    const file = path.join(data.dir, `download-${downloads}-${name}`);
    await writeFile(file, bytes);
    return file;
  }

  it('covers every mergekit case of the golden index that has an expected tensor', () => {
    assert.ok(mergekitCases.length >= 6, `only ${mergekitCases.length} cases found in ${GOLDEN_DIR}`);
  });

  for (const golden of mergekitCases) {
    it(`${golden.case} equals the reference at its tolerance`, async () => {
      const caseDir = path.join(GOLDEN_DIR, golden.case);
      const recipe = parseYaml(readFileSync(path.join(GOLDEN_DIR, golden.recipe!), 'utf8'));
      const ids = new Map<string, string>();
      const idOf = async (file: string) => {
        if (!ids.has(file)) ids.set(file, await uploadModel(path.join(caseDir, file)));
        return ids.get(file)!;
      };
      if (recipe.base_model) recipe.base_model = await idOf(recipe.base_model);
      for (const entry of recipe.models) entry.model = await idOf(entry.model);

      const artifact = await runMerge(recipe);
      assert.equal(artifact.kind, 'model');
      const merged = await Checkpoint.openFiles({
        'model.safetensors': await download('model', artifact.id, 'model.safetensors'),
      });
      try {
        const tolerance = golden.tolerance as { rtol: number; atol: number };
        const { names, worstExcess } = await compareCheckpoints(
          merged,
          path.join(GOLDEN_DIR, golden.expected!),
          tolerance.rtol,
          tolerance.atol,
        );
        assert.ok(names.length > 0);
        assert.ok(worstExcess <= 0, `${golden.case}: outside tolerance by ${worstExcess}`);
      } finally {
        await merged.close();
      }
    });
  }

  it('peft_svd over uploaded adapters gives the single-scaling dense delta (rtol 1e-4, atol 1e-5)', async () => {
    const caseDir = path.join(GOLDEN_DIR, 'peft_svd');
    const weights = [1.0, 0.6, 0.4];
    const adapters: string[] = [];
    for (const name of ['a0', 'a1', 'a2_r8'])
      adapters.push(await uploadAdapter(path.join(caseDir, 'adapters', name)));
    const artifact = await runMerge({
      merge_method: 'peft_svd',
      models: adapters.map((adapter, i) => ({ adapter, parameters: { weight: weights[i] } })),
    });
    assert.equal(artifact.kind, 'adapter');
    const config = JSON.parse(
      readFileSync(await download('adapter', artifact.id, 'adapter_config.json'), 'utf8'),
    );
    assert.equal(config.r, 8);
    const scaling = config.lora_alpha / config.r;
    const merged = await Checkpoint.openFiles(
      { 'adapter_model.safetensors': await download('adapter', artifact.id, 'adapter_model.safetensors') },
      'adapter_model',
    );
    const expected = await Checkpoint.openFiles({
      'model.safetensors': path.join(caseDir, 'alt_single_scaling', 'delta.safetensors'),
    });
    try {
      for (const weightName of expected.names()) {
        const module = weightName.replace(/\.weight$/, '');
        const a = await merged.readFloat32(`base_model.model.${module}.lora_A.weight`);
        const b = await merged.readFloat32(`base_model.model.${module}.lora_B.weight`);
        const [out, rank] = merged.info(`base_model.model.${module}.lora_B.weight`).shape;
        const inFeatures = merged.info(`base_model.model.${module}.lora_A.weight`).shape[1];
        const want = await expected.readFloat32(weightName);
        for (let o = 0; o < out; o++) {
          for (let i = 0; i < inFeatures; i++) {
            let sum = 0;
            for (let k = 0; k < rank; k++) sum += b[o * rank + k] * a[k * inFeatures + i];
            const got = scaling * sum;
            const e = want[o * inFeatures + i];
            assert.ok(
              Math.abs(got - e) <= 1e-5 + 1e-4 * Math.abs(e),
              `${weightName}[${o},${i}]: ${got} vs ${e}`,
            );
          }
        }
      }
    } finally {
      await merged.close();
      await expected.close();
    }
    assert.deepEqual(leftoverWorkDirs(data.dir), []);
  });
});
