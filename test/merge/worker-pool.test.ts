// A merge spread over worker threads gives byte-identical output to the same merge inline.
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { fileResolver } from '../../src/cli/merge-command.ts';
import {
  closePlan,
  executeMerge,
  type MergePlan,
  MergePlanError,
  parseRecipe,
  planMerge,
} from '../../src/merge/index.ts';
import { writeSafetensors } from '../../src/tensors/index.ts';
import { bundledWorkerScript } from '../../src/merge/workers/worker-script.ts';
import { tempDir } from '../helpers/redis.ts';

let dir: ReturnType<typeof tempDir>;
const SHAPES: Array<[string, number[]]> = [
  ['model.embed_tokens.weight', [64, 48]],
  ...[0, 1, 2].flatMap(
    (l): Array<[string, number[]]> => [
      [`model.layers.${l}.input_layernorm.weight`, [48]],
      [`model.layers.${l}.mlp.up_proj.weight`, [96, 48]],
    ],
  ),
  ['lm_head.weight', [64, 48]],
];

before(async () => {
  dir = tempDir('lorafuse-pool');
  for (const [m, file] of ['base', 'm0', 'm1', 'm2'].entries()) {
    await writeSafetensors(
      path.join(dir.dir, `${file}.safetensors`),
      SHAPES.map(([name, shape]) => ({
        name,
        dtype: 'BF16' as const,
        shape,
        data: Uint16Array.from(
          { length: shape.reduce((a, b) => a * b) },
          (_, i) => 0x3c00 + ((i * (m + 3) * 2654435761) >>> 24),
        ),
      })),
    );
  }
});
after(() => dir.remove());

async function mergeBytes(
  method: string,
  workers: number,
  extra: Record<string, unknown> = {},
  afterPlanning: (plan: MergePlan) => void = () => {},
): Promise<Buffer> {
  const plan = await planMerge(
    parseRecipe({
      merge_method: method,
      base_model: 'base.safetensors',
      models: ['m0', 'm1', 'm2'].map((m, i) => ({
        model: `${m}.safetensors`,
        parameters: { weight: 0.5 + i * 0.2, density: 0.4 },
      })),
      seed: 11,
      ...extra,
    }),
    fileResolver(dir.dir),
  );
  afterPlanning(plan);
  const outDir = path.join(dir.dir, `${method}-${workers}-${Object.keys(extra).join('-')}`);
  try {
    await executeMerge(plan, { outDir, workers });
    return readFileSync(path.join(outDir, 'model.safetensors'));
  } finally {
    await closePlan(plan);
  }
}

test('ties, dare_ties and della give the same bytes with 2 workers as inline', async () => {
  for (const method of ['ties', 'dare_ties', 'della', 'task_arithmetic']) {
    const inline = await mergeBytes(method, 0);
    assert.ok(inline.equals(await mergeBytes(method, 2)), method);
  }
});

test('an error in a worker fails the merge with the tensor named and leaves no output', async () => {
  // The planner refuses epsilon 0.2 with density 0.1 (test/merge/parameter-ranges.test.ts), so the
  // value is forced into the plan afterwards to make the worker thread fail.
  const forceEpsilon = (plan: MergePlan) => {
    for (const tensor of plan.tensors) for (const params of tensor.perModel) params.epsilon = 0.2;
  };
  await assert.rejects(
    mergeBytes(
      'della',
      2,
      {
        parameters: {},
        models: ['m0'].map((m) => ({
          model: `${m}.safetensors`,
          parameters: { weight: 1, density: 0.1, epsilon: 0.05 },
        })),
      },
      forceEpsilon,
    ),
    (e: unknown) =>
      e instanceof MergePlanError &&
      e.code === 'merge_failed' &&
      e.tensor !== undefined &&
      /epsilon/.test(e.message),
  );
  assert.equal(existsSync(path.join(dir.dir, 'della-2-parameters-models')), false);
});

test('merge workers start from one bundled script (no TypeScript loader per thread)', () => {
  const entry = new URL('../../src/merge/workers/tensor-worker.ts', import.meta.url).href;
  const script = bundledWorkerScript(entry);
  assert.ok(script, 'esbuild (tsx’s compiler) bundles the worker entry');
  // the bundle carries the kernels themselves, not an import of the TypeScript sources
  assert.match(script, /function mergeGtaEncoded/);
  assert.doesNotMatch(script, /\.ts["']\)/);
  assert.equal(bundledWorkerScript(entry), script, 'bundled once per process');
});
