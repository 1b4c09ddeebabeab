// DARE is random, so the golden case stores statistics: these tests check lorafuse's draws against
// them (kept fraction, exact L1 preservation, the 5-sigma rule on the mean), compare dare_ties with
// an independent Monte Carlo restatement, and check that the seed alone decides the output bits.
import assert from 'node:assert/strict';
import { readFileSync, rmSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { fileResolver } from '../../src/cli/merge-command.ts';
import { closePlan, executeMerge, getMethod, parseRecipe, planMerge } from '../../src/merge/index.ts';
import type { TensorInput, TensorMergeMethod } from '../../src/merge/method.ts';
import { KeyedRandomStream, randomForTensor } from '../../src/merge/random.ts';
import { sparsifyBernoulli } from '../../src/merge/sparsify.ts';
import { goldenCaseDir, readCaseJson, readGoldenTensors } from '../helpers/golden.ts';
import { tempDir } from '../helpers/redis.ts';

const CASE = 'mergekit_dare_linear_stats';
const DIR = goldenCaseDir(CASE);
const WEIGHTS = [1.0, 0.7, 0.5];
const DENSITY = 0.5;

async function loadInputs() {
  const load = (name: string) => readGoldenTensors(path.join(DIR, `${name}.safetensors`));
  return {
    base: await load('base'),
    models: [await load('m0'), await load('m1'), await load('m2')],
    stats: await load('stats'),
  };
}
const inputs = loadInputs();

function tensorInputs(x: Awaited<typeof inputs>, name: string): TensorInput[] {
  return [
    ...x.models.map((m, i) => ({
      model: `m${i}`,
      isBase: false,
      data: m.get(name)!.data,
      params: { weight: WEIGHTS[i], density: DENSITY },
    })),
    { model: 'base', isBase: true, data: x.base.get(name)!.data, params: {} },
  ];
}

function mergeDraw(
  method: TensorMergeMethod,
  x: Awaited<typeof inputs>,
  name: string,
  seed: number,
): Float32Array {
  return method.mergeTensor({
    tensorName: name,
    shape: x.base.get(name)!.shape,
    inputs: tensorInputs(x, name),
    params: { normalize: 0, rescale: 1, lambda: 1 },
    random: randomForTensor(seed, name),
  });
}

test('dare_linear: each draw keeps ~density of every task vector and preserves its L1 norm exactly', async () => {
  const x = await inputs;
  const perTensor = readCaseJson(CASE).per_tensor as Record<
    string,
    { numel: number; kept_fraction_per_draw_std_theory: number }
  >;
  for (const [name, stats] of Object.entries(perTensor)) {
    for (let draw = 0; draw < 50; draw++) {
      x.models.forEach((model, i) => {
        const delta = new Float32Array(stats.numel);
        const m = model.get(name)!.data;
        const b = x.base.get(name)!.data;
        for (let k = 0; k < delta.length; k++) delta[k] = m[k] - b[k];
        let l1Before = 0;
        for (const v of delta) l1Before += Math.abs(v);
        sparsifyBernoulli(delta, DENSITY, true, new KeyedRandomStream(draw, name, `model:${i}`));
        let kept = 0;
        let l1After = 0;
        for (const v of delta) {
          if (v !== 0) kept++;
          l1After += Math.abs(v);
        }
        const z = Math.abs(kept / stats.numel - DENSITY) / stats.kept_fraction_per_draw_std_theory;
        assert.ok(z < 5, `${name} model ${i} draw ${draw}: kept fraction ${kept / stats.numel}`);
        assert.ok(Math.abs(l1After - l1Before) / l1Before < 1e-6, `${name}: L1 ${l1After} vs ${l1Before}`);
      });
    }
  }
});

test('dare_linear: the mean over draws of the case recipe agrees with the reference statistics (5-sigma rule)', async () => {
  const x = await inputs;
  const M = 300;
  const N = readCaseJson(CASE).n_draws as number;
  // The case's own recipe.yaml through the planner and executor, one seed per draw.
  const plan = await planMerge(
    parseRecipe(readFileSync(path.join(DIR, 'recipe.yaml'), 'utf8')),
    fileResolver(DIR),
  );
  const out = tempDir('lorafuse-dare-stats');
  const means = new Map([...x.base].map(([name, t]) => [name, new Float64Array(t.data.length)]));
  try {
    for (let seed = 0; seed < M; seed++) {
      plan.seed = seed;
      const outDir = path.join(out.dir, String(seed));
      await executeMerge(plan, { outDir });
      const merged = await readGoldenTensors(path.join(outDir, 'model.safetensors'));
      for (const [name, mean] of means) {
        const base = x.base.get(name)!.data;
        const data = merged.get(name)!.data;
        for (let i = 0; i < base.length; i++) mean[i] += (data[i] - base[i]) / M;
      }
      rmSync(outDir, { recursive: true });
    }
  } finally {
    await closePlan(plan);
    out.remove();
  }
  for (const [name, mean] of means) {
    const refMean = x.stats.get(`${name}.mean_delta`)!.data;
    const refStd = x.stats.get(`${name}.std_delta`)!.data;
    for (let i = 0; i < mean.length; i++) {
      const limit = 5 * refStd[i] * Math.sqrt(1 / M + 1 / N) + 1e-7;
      assert.ok(
        Math.abs(mean[i] - refMean[i]) <= limit,
        `${name}[${i}]: mean ${mean[i]} vs ${refMean[i]} (limit ${limit})`,
      );
    }
  }
});

/** dare_ties restated in float64: Bernoulli keep, L1 rescale, weighted "sum" sign vote, no normalisation. */
function referenceDareTies(x: Awaited<typeof inputs>, name: string, draw: number): Float64Array {
  const base = x.base.get(name)!.data;
  const deltas = x.models.map((model, i) => {
    const m = model.get(name)!.data;
    const d = new Float64Array(base.length);
    const random = new KeyedRandomStream(draw, `reference ${name}`, String(i));
    let before = 0;
    let after = 0;
    for (let k = 0; k < d.length; k++) {
      const v = m[k] - base[k];
      before += Math.abs(v);
      d[k] = random.next() < DENSITY ? v : 0;
      after += Math.abs(d[k]);
    }
    for (let k = 0; k < d.length; k++) d[k] *= before / after;
    return d;
  });
  const out = new Float64Array(base.length);
  for (let k = 0; k < base.length; k++) {
    let vote = 0;
    deltas.forEach((d, i) => {
      vote += WEIGHTS[i] * d[k];
    });
    const majority = vote >= 0 ? 1 : -1;
    deltas.forEach((d, i) => {
      if (Math.sign(WEIGHTS[i] * d[k]) === majority) out[k] += WEIGHTS[i] * d[k];
    });
  }
  return out;
}

test('dare_ties: the mean and spread over draws agree with an independent restatement', async () => {
  const x = await inputs;
  const method = getMethod('dare_ties') as TensorMergeMethod;
  const M = 300;
  for (const name of x.base.keys()) {
    const base = x.base.get(name)!.data;
    const n = base.length;
    const [ours, ref] = [new Float64Array(n * 2), new Float64Array(n * 2)];
    for (let draw = 0; draw < M; draw++) {
      const merged = mergeDraw(method, x, name, draw);
      const expected = referenceDareTies(x, name, draw);
      for (let i = 0; i < n; i++) {
        const d = merged[i] - base[i];
        ours[i] += d;
        ours[n + i] += d * d;
        ref[i] += expected[i];
        ref[n + i] += expected[i] * expected[i];
      }
    }
    for (let i = 0; i < n; i++) {
      const [mo, mr] = [ours[i] / M, ref[i] / M];
      const vo = Math.max(0, ours[n + i] / M - mo * mo);
      const vr = Math.max(0, ref[n + i] / M - mr * mr);
      const limit = 5 * Math.sqrt((vo + vr) / M) + 1e-6;
      assert.ok(Math.abs(mo - mr) <= limit, `${name}[${i}]: ${mo} vs ${mr} (limit ${limit})`);
    }
  }
});

async function mergeBytes(method: string, seed: number): Promise<Buffer> {
  const recipe = parseRecipe(
    readFileSync(path.join(DIR, 'recipe.yaml'), 'utf8').replace('dare_linear', method),
  );
  recipe.seed = seed;
  const plan = await planMerge(recipe, fileResolver(DIR));
  const out = tempDir('lorafuse-dare');
  try {
    await executeMerge(plan, { outDir: path.join(out.dir, 'o') });
    return readFileSync(path.join(out.dir, 'o', 'model.safetensors'));
  } finally {
    await closePlan(plan);
    out.remove();
  }
}

test('the same recipe and seed give bit-identical output; another seed does not', async () => {
  for (const method of ['dare_linear', 'dare_ties', 'della']) {
    const first = await mergeBytes(method, 7);
    assert.ok(first.equals(await mergeBytes(method, 7)), `${method} seed 7 twice`);
    assert.ok(!first.equals(await mergeBytes(method, 8)), `${method} seeds 7 and 8`);
  }
});
