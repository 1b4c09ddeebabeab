import assert from 'node:assert/strict';
import { test } from 'node:test';
import { denseSvd } from '../../src/merge/linalg/jacobi-svd.ts';
import { seededStream } from '../../src/merge/linalg/seeded-random.ts';
import { linearCoefficients } from '../../src/merge/lora/delta-linearity.ts';
import { mergeLoraModule } from '../../src/merge/lora/module-merge.ts';
import type { LoraModuleInput, MergeMethod, ParameterValue, TensorInput } from '../../src/merge/method.ts';
import { breadcrumbs } from '../../src/merge/methods/breadcrumbs.ts';
import { karcher } from '../../src/merge/methods/karcher.ts';
import { linear } from '../../src/merge/methods/linear.ts';
import { peftCat } from '../../src/merge/methods/peft-cat.ts';
import { slerp } from '../../src/merge/methods/slerp.ts';
import { taskArithmetic } from '../../src/merge/methods/task-arithmetic.ts';
import { ties } from '../../src/merge/methods/ties.ts';
import { assertClose, product, randomAdapter } from './peft/adapters.ts';

const OUT = 14;
const IN = 11;
const random = (stream: string) => seededStream(stream.length * 7919 + 1);

function adapters(weights: number[], ranks = [2, 3, 2]): LoraModuleInput[] {
  return weights.map((w, i) => randomAdapter(OUT, IN, ranks[i], 100 + i, w, 1 + i / 2));
}

/** Σ cᵢ·sᵢ·Bᵢ·Aᵢ in float64. */
function weightedDeltas(list: LoraModuleInput[], coefs: number[]): Float64Array {
  const out = new Float64Array(OUT * IN);
  list.forEach((x, j) => {
    const d = product(x.b, x.a, OUT, x.rank, IN);
    for (let i = 0; i < d.length; i++) out[i] += coefs[j] * x.scaling * d[i];
  });
  return out;
}

function merge(
  method: MergeMethod,
  list: LoraModuleInput[],
  params: Record<string, ParameterValue>,
  rank: number | 'full',
  output: 'adapter' | 'model',
) {
  return mergeLoraModule({
    method,
    moduleName: 'layers.0.q_proj',
    adapters: list,
    params,
    delta: { rank, output },
    random,
  });
}

test('declared linear methods get their coefficients; nonlinear, undeclared and random ones do not', () => {
  const modelParams = [{ weight: 2 }, { weight: 1 }, { weight: 1 }];
  const lin = linearCoefficients(linear, {
    withBase: false,
    params: { normalize: true },
    modelParams,
  });
  assertClose(lin!, [0.5, 0.25, 0.25], 1e-6, 1e-7, 'linear');
  const ta = linearCoefficients(taskArithmetic, {
    withBase: true,
    params: { lambda: 0.7, normalize: false },
    modelParams,
  });
  assertClose(ta!, [1.4, 0.7, 0.7], 1e-6, 1e-7, 'task_arithmetic');
  // slerp from a zero base happens to be linear, but it does not declare it: it takes the dense path.
  assert.equal(linearCoefficients(slerp, { withBase: true, params: { t: 0.3 }, modelParams: [{}] }), null);
  assert.equal(
    linearCoefficients(ties, {
      withBase: true,
      params: { normalize: true },
      modelParams: modelParams.map((p) => ({ ...p, density: 0.5 })),
    }),
    null,
  );
  assert.equal(linearCoefficients(karcher, { withBase: false, params: {}, modelParams }), null);
  // density and gamma are per-model parameters in mergekit.
  for (const gamma of [0.01, 0.1]) {
    const sparse = modelParams.map((p) => ({ ...p, density: 0.9, gamma }));
    const params = { normalize: false, lambda: 1 };
    assert.equal(
      linearCoefficients(breadcrumbs, { withBase: true, params, modelParams: sparse }),
      null,
      `${gamma}`,
    );
  }
});

test('delta space, linear method, output model: Σ cᵢ·sᵢ·Bᵢ·Aᵢ', () => {
  const list = adapters([0.5, 0.3, 0.2]);
  const result = merge(linear, list, { normalize: false }, 'full', 'model');
  assertClose(result.delta!, weightedDeltas(list, [0.5, 0.3, 0.2]), 1e-5, 1e-6, 'delta');
});

test('delta space, task_arithmetic, rank full: exact concatenated factors of rank Σrᵢ', () => {
  const list = adapters([1, 1, 1]);
  const result = merge(taskArithmetic, list, { lambda: 0.5, normalize: false }, 'full', 'adapter');
  assert.equal(result.rank, 7);
  assert.equal(result.relativeError, 0);
  assertClose(
    product(result.b!, result.a!, OUT, 7, IN),
    weightedDeltas(list, [0.5, 0.5, 0.5]),
    1e-5,
    1e-6,
    'BA',
  );
});

test('delta space, linear, rank R < Σrᵢ: the best rank-R approximation and its exact relative error', () => {
  const list = adapters([0.5, 0.3, 0.2]);
  const result = merge(linear, list, { normalize: false }, 4, 'adapter');
  assert.equal(result.rank, 4);
  const exact = weightedDeltas(list, [0.5, 0.3, 0.2]);
  const { u, s, v } = denseSvd({ rows: OUT, cols: IN, data: exact });
  const best = new Float64Array(OUT * IN);
  for (let o = 0; o < OUT; o++) {
    for (let i = 0; i < IN; i++)
      for (let j = 0; j < 4; j++) best[o * IN + i] += u.data[o * u.cols + j] * s[j] * v.data[i * v.cols + j];
  }
  assertClose(product(result.b!, result.a!, OUT, 4, IN), best, 1e-5, 1e-6, 'BA');
  let tail = 0;
  let total = 0;
  s.forEach((x, j) => {
    total += x * x;
    if (j >= 4) tail += x * x;
  });
  assert.ok(Math.abs(result.relativeError! - Math.sqrt(tail / total)) < 1e-9);
});

test('delta space, linear: a 3072x4096 module re-factors from the thin factors (no dense SVD) in well under a second', () => {
  const big = [1, 2, 3].map((k) => randomAdapter(3072, 4096, 8, 200 + k, 0.5, 2));
  const started = performance.now();
  const result = mergeLoraModule({
    method: linear,
    moduleName: 'big',
    adapters: big,
    params: { normalize: false },
    delta: { rank: 24, output: 'adapter' },
    random,
  });
  const elapsed = performance.now() - started;
  assert.ok(elapsed < 5000, `${elapsed} ms`);
  assert.equal(result.rank, 24);
  assert.ok(result.relativeError! < 1e-12);
  // Spot-check entries of B·A against Σ 0.5·sᵢ·Bᵢ·Aᵢ.
  for (const [o, i] of [
    [0, 0],
    [3071, 4095],
    [1234, 567],
  ]) {
    let want = 0;
    for (const x of big)
      for (let r = 0; r < 8; r++) want += 0.5 * x.scaling * x.b[o * 8 + r] * x.a[r * 4096 + i];
    let got = 0;
    for (let r = 0; r < 24; r++) got += result.b![o * 24 + r] * result.a![r * 4096 + i];
    assert.ok(Math.abs(got - want) < 1e-4 * (Math.abs(want) + 1), `${o},${i}: ${got} vs ${want}`);
  }
});

test('delta space, nonlinear method (ties): runs on the dense deltas, reports the truncation error', () => {
  const list = adapters([1, 0.7, 0.5], [3, 3, 3]).map((x) => ({
    ...x,
    params: { ...x.params, density: 0.4 },
  }));
  const params = { normalize: true, lambda: 1 };
  const model = merge(ties, list, params, 'full', 'model');
  // Same as ties on the dense deltas with a zero base.
  const inputs: TensorInput[] = list.map((x, i) => ({
    model: `a${i}`,
    isBase: false,
    data: Float32Array.from(weightedDeltas([x], [1])),
    params: x.params,
  }));
  inputs.push({ model: 'base', isBase: true, data: new Float32Array(OUT * IN), params: {} });
  const direct = ties.mergeTensor({
    tensorName: 't',
    shape: [OUT, IN],
    inputs,
    params,
    random: () => seededStream(1),
  });
  assertClose(model.delta!, direct, 1e-5, 1e-6, 'delta');
  const adapter = merge(ties, list, params, 5, 'adapter');
  assert.equal(adapter.rank, 5);
  const approx = product(adapter.b!, adapter.a!, OUT, 5, IN);
  let residual = 0;
  let norm = 0;
  for (let i = 0; i < approx.length; i++) {
    residual += (approx[i] - model.delta![i]) ** 2;
    norm += model.delta![i] ** 2;
  }
  assert.ok(adapter.relativeError! > 0.01);
  assert.ok(Math.abs(adapter.relativeError! - Math.sqrt(residual / norm)) < 1e-5);
});

test('adapter methods go through mergeModule; output model gives their dense delta', () => {
  const list = adapters([1, 0.6, 0.4]);
  const result = mergeLoraModule({ method: peftCat, moduleName: 'm', adapters: list, params: {}, random });
  assert.equal(result.rank, 7);
  const dense = merge(peftCat, list, {}, 'full', 'model');
  assertClose(dense.delta!, weightedDeltas(list, [1, 0.6, 0.4]), 1e-5, 1e-6, 'delta');
  const lower = merge(peftCat, list, {}, 3, 'adapter');
  assert.equal(lower.rank, 3);
  assert.ok(lower.relativeError! > 0);
});

test('a tensor method without delta space is refused', () => {
  assert.throws(
    () =>
      mergeLoraModule({ method: linear, moduleName: 'm', adapters: adapters([1, 1, 1]), params: {}, random }),
    /delta/,
  );
});

test('only methods that declare linearInInputs are probed, and the probe still checks them', () => {
  const modelParamsLinear = [{ weight: 1 }, { weight: 2 }];
  const undeclared = { ...linear, name: 'undeclared_linear', linearInInputs: false };
  assert.equal(
    linearCoefficients(undeclared, {
      withBase: false,
      params: { normalize: false },
      modelParams: modelParamsLinear,
    }),
    null,
  );
});

test('a declared-linear method that zeroes the small probe is not taken as linear', () => {
  const zeroing = {
    ...linear,
    name: 'drops_small_tensors',
    mergeTensor: (ctx: Parameters<typeof linear.mergeTensor>[0]) =>
      ctx.inputs[0].data.length < 1000
        ? new Float32Array(ctx.inputs[0].data.length)
        : linear.mergeTensor(ctx),
  };
  const modelParams = [{ weight: 1 }, { weight: 1 }];
  assert.equal(
    linearCoefficients(zeroing, { withBase: false, params: { normalize: false }, modelParams }),
    null,
  );
});
