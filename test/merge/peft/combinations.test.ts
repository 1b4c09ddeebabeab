// The held-back PEFT cases, tested from the golden README's text against a plain float64 restatement.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { denseSvd } from '../../../src/merge/linalg/jacobi-svd.ts';
import type { LoraModuleInput, ParameterValue } from '../../../src/merge/method.ts';
import { addWeightedAdapterModule } from '../../../src/merge/peft/add-weighted-adapter.ts';
import { peftLinear } from '../../../src/merge/methods/peft-linear.ts';
import { peftMagnitudePrune } from '../../../src/merge/methods/peft-magnitude-prune.ts';
import { peftMagnitudePruneSvd } from '../../../src/merge/methods/peft-magnitude-prune-svd.ts';
import { peftTies } from '../../../src/merge/methods/peft-ties.ts';
import { peftTiesSvd } from '../../../src/merge/methods/peft-ties-svd.ts';
import { assertClose, product, randomAdapter } from './adapters.ts';

const OUT = 12;
const IN = 10;
/** Three rank-4 adapters, scaling 2, weights 1.0 / 0.6 / 0.4 as in the README's calls. */
const ADAPTERS = [
  randomAdapter(OUT, IN, 4, 1, 1.0),
  randomAdapter(OUT, IN, 4, 2, 0.6),
  randomAdapter(OUT, IN, 4, 3, 0.4),
];

/** Restatement: keep int(density·n) largest |x|. */
function prune(x: number[], density: number): number[] {
  if (density >= 1) return x;
  const k = Math.trunc(density * x.length);
  const keep = new Set(
    x
      .map((v, i) => [Math.abs(v), i] as const)
      .sort((p, q) => q[0] - p[0])
      .slice(0, k)
      .map(([, i]) => i),
  );
  return x.map((v, i) => (keep.has(i) ? v : 0));
}

function ties(
  tensors: number[][],
  weights: number[],
  density: number,
  method: 'total' | 'frequency',
): number[] {
  const pruned = tensors.map((t) => prune(t, density));
  return pruned[0].map((_, i) => {
    const vote = pruned.reduce((acc, t) => acc + (method === 'total' ? t[i] : Math.sign(t[i])), 0);
    const sign = vote >= 0 ? 1 : -1;
    const agree = pruned.map((t) => Math.sign(t[i]) === sign);
    const count = agree.filter(Boolean).length;
    const sum = pruned.reduce((acc, t, j) => acc + (agree[j] ? weights[j] * t[i] : 0), 0);
    return sum / Math.max(count, 1);
  });
}

function magnitudePrune(tensors: number[][], weights: number[], density: number): number[] {
  const pruned = tensors.map((t) => prune(t, density));
  return pruned[0].map((_, i) => pruned.reduce((acc, t, j) => acc + weights[j] * t[i], 0));
}

const sqrtWeights = (adapters: LoraModuleInput[]) =>
  adapters.map((x) => Math.sqrt(Number(x.params.weight) * x.scaling));
const ctx = (adapters: LoraModuleInput[], params: Record<string, ParameterValue>) => ({
  moduleName: 'm',
  adapters,
  params,
});

test('peft_linear: A = Σ√(wᵢsᵢ)Aᵢ, B = Σ√(wᵢsᵢ)Bᵢ, rank kept; the delta has cross terms', () => {
  const merged = peftLinear.mergeModule(ctx(ADAPTERS, {}));
  assert.equal(merged.rank, 4);
  const w = sqrtWeights(ADAPTERS);
  const a = Array.from(ADAPTERS[0].a, (_, i) => ADAPTERS.reduce((acc, x, j) => acc + w[j] * x.a[i], 0));
  const b = Array.from(ADAPTERS[0].b, (_, i) => ADAPTERS.reduce((acc, x, j) => acc + w[j] * x.b[i], 0));
  assertClose(merged.a, a, 1e-5, 1e-6, 'A');
  assertClose(merged.b, b, 1e-5, 1e-6, 'B');
  // Not the weighted sum of deltas: B₀·A₁ etc. survive.
  const sumOfDeltas = new Float64Array(OUT * IN);
  for (const x of ADAPTERS) {
    const d = product(x.b, x.a, OUT, 4, IN);
    for (let i = 0; i < d.length; i++) sumOfDeltas[i] += Number(x.params.weight) * x.scaling * d[i];
  }
  const delta = product(merged.b, merged.a, OUT, 4, IN);
  assert.ok(Math.max(...delta.map((v, i) => Math.abs(v - sumOfDeltas[i]))) > 1e-2);
});

test('peft_linear: a negative weight puts its sign on A only', () => {
  const adapters = [randomAdapter(OUT, IN, 4, 4, 1.0), randomAdapter(OUT, IN, 4, 5, -0.5)];
  const merged = peftLinear.mergeModule(ctx(adapters, {}));
  const w = adapters.map((x) => Math.sqrt(Math.abs(Number(x.params.weight) * x.scaling)));
  const a = Array.from(adapters[0].a, (_, i) => w[0] * adapters[0].a[i] - w[1] * adapters[1].a[i]);
  const b = Array.from(adapters[0].b, (_, i) => w[0] * adapters[0].b[i] + w[1] * adapters[1].b[i]);
  assertClose(merged.a, a, 1e-5, 1e-6, 'A');
  assertClose(merged.b, b, 1e-5, 1e-6, 'B');
});

for (const method of ['total', 'frequency'] as const) {
  test(`peft_ties (density 0.5, ${method}): on A and on B separately, unweighted vote, count divisor`, () => {
    const merged = peftTies.mergeModule(ctx(ADAPTERS, { density: 0.5, majority_sign_method: method }));
    const w = sqrtWeights(ADAPTERS);
    assertClose(
      merged.a,
      ties(
        ADAPTERS.map((x) => Array.from(x.a)),
        w,
        0.5,
        method,
      ),
      1e-5,
      1e-6,
      'A',
    );
    assertClose(
      merged.b,
      ties(
        ADAPTERS.map((x) => Array.from(x.b)),
        w,
        0.5,
        method,
      ),
      1e-5,
      1e-6,
      'B',
    );
  });
}

test('peft_ties: total and frequency votes differ, and both differ from a weighted vote', () => {
  const total = peftTies.mergeModule(ctx(ADAPTERS, { density: 0.5, majority_sign_method: 'total' }));
  const frequency = peftTies.mergeModule(ctx(ADAPTERS, { density: 0.5, majority_sign_method: 'frequency' }));
  assert.notDeepEqual(Array.from(total.a), Array.from(frequency.a));
});

test('peft_magnitude_prune (density 0.5): prune, weighted sum, no election, no division', () => {
  const merged = peftMagnitudePrune.mergeModule(ctx(ADAPTERS, { density: 0.5 }));
  const w = sqrtWeights(ADAPTERS);
  assertClose(
    merged.a,
    magnitudePrune(
      ADAPTERS.map((x) => Array.from(x.a)),
      w,
      0.5,
    ),
    1e-5,
    1e-6,
    'A',
  );
  assertClose(
    merged.b,
    magnitudePrune(
      ADAPTERS.map((x) => Array.from(x.b)),
      w,
      0.5,
    ),
    1e-5,
    1e-6,
    'B',
  );
});

test('density must be given and non-negative for the pruning types', () => {
  assert.throws(() => peftTies.mergeModule(ctx(ADAPTERS, {})), /density/);
  assert.throws(() => peftMagnitudePruneSvd.mergeModule(ctx(ADAPTERS, { density: -0.1 })), /density/);
});

test('density 0 prunes everything (PEFT), density 1 prunes nothing', () => {
  const zero = peftMagnitudePrune.mergeModule(ctx(ADAPTERS, { density: 0 }));
  assert.ok(zero.a.every((v) => v === 0));
  const full = peftMagnitudePrune.mergeModule(ctx(ADAPTERS, { density: 1 }));
  const linear = peftLinear.mergeModule(ctx(ADAPTERS, {}));
  assertClose(full.a, linear.a, 1e-6, 1e-7, 'A');
});

/** Dᵢ = sᵢ·Bᵢ·Aᵢ for the dense (SVD) types. */
const denseDeltas = (adapters: LoraModuleInput[]) =>
  adapters.map((x) => Array.from(product(x.b, x.a, OUT, x.rank, IN), (v) => x.scaling * v));

function rankTruncation(m: number[], rank: number): Float64Array {
  const { u, s, v } = denseSvd({ rows: OUT, cols: IN, data: Float64Array.from(m) });
  const out = new Float64Array(OUT * IN);
  for (let o = 0; o < OUT; o++) {
    for (let i = 0; i < IN; i++) {
      for (let j = 0; j < rank; j++)
        out[o * IN + i] += u.data[o * u.cols + j] * s[j] * v.data[i * v.cols + j];
    }
  }
  return out;
}

for (const [name, method, combine] of [
  ['ties_svd', peftTiesSvd, (d: number[][], w: number[]) => ties(d, w, 0.5, 'total')],
  ['magnitude_prune_svd', peftMagnitudePruneSvd, (d: number[][], w: number[]) => magnitudePrune(d, w, 0.5)],
] as const) {
  for (const doubleScaling of [false, true]) {
    test(`peft_${name} (density 0.5, double scaling ${doubleScaling}): prune the dense Dᵢ, combine, rank-4 SVD`, () => {
      const params: Record<string, ParameterValue> = {
        density: 0.5,
        peft_compat_double_scaling: doubleScaling,
      };
      const merged = method.mergeModule(ctx(ADAPTERS, params));
      assert.equal(merged.rank, 4);
      const weights = ADAPTERS.map((x) => Number(x.params.weight) * (doubleScaling ? x.scaling : 1));
      const pre = combine(denseDeltas(ADAPTERS), weights);
      const detail = addWeightedAdapterModule(name, ctx(ADAPTERS, params), { withPreSvdDelta: true });
      assertClose(detail.preSvdDelta!, pre, 1e-5, 1e-6, 'pre_svd_delta');
      assertClose(product(merged.b, merged.a, OUT, 4, IN), rankTruncation(pre, 4), 1e-4, 1e-5, 'delta');
    });
  }
}

test('svd types: svd_rank sets the new rank; svd_clamp bounds both factors', () => {
  const merged = peftTiesSvd.mergeModule(ctx(ADAPTERS, { density: 0.5, svd_rank: 6 }));
  assert.equal(merged.rank, 6);
  assert.equal(merged.a.length, 6 * IN);
  const clamped = peftTiesSvd.mergeModule(ctx(ADAPTERS, { density: 0.5, svd_clamp: 0.9 }));
  const values = [...clamped.a, ...clamped.b];
  const hi = Math.max(...values);
  assert.ok(values.every((v) => v >= -hi - 1e-12));
  const unclamped = peftTiesSvd.mergeModule(ctx(ADAPTERS, { density: 0.5 }));
  assert.ok(Math.max(...unclamped.a, ...unclamped.b) > hi);
});

test('linear-path types need equal ranks; one adapter is merged as linear', () => {
  const mixed = [randomAdapter(OUT, IN, 4, 7, 1), randomAdapter(OUT, IN, 2, 8, 1)];
  assert.throws(() => peftTies.mergeModule(ctx(mixed, { density: 0.5 })), /equal rank/);
  const single = [randomAdapter(OUT, IN, 4, 9, 0.5)];
  const merged = peftTiesSvd.mergeModule(ctx(single, { density: 0.5 }));
  const linear = peftLinear.mergeModule(ctx(single, {}));
  assert.deepEqual(Array.from(merged.a), Array.from(linear.a));
  assert.equal(merged.rank, 4);
});
