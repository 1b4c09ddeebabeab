import assert from 'node:assert/strict';
import { test } from 'node:test';
import { gaussian, seededStream } from '../../../src/merge/linalg/seeded-random.ts';
import type { TensorInput } from '../../../src/merge/method.ts';
import { multislerp } from '../../../src/merge/methods/multislerp.ts';

function random(n: number, seed: number, scale = 1): Float32Array {
  const r = seededStream(seed);
  return Float32Array.from({ length: n }, () => scale * gaussian(r));
}

/** Float64 restatement of mergekit's multislerp() with explicit unit vectors. */
function reference(tvs: number[][], weightsIn: number[], eps = 1e-8): number[] {
  const total = weightsIn.reduce((a, b) => a + b, 0);
  const w = weightsIn.map((x) => x / total);
  const norms = tvs.map((v) => Math.hypot(...v));
  const units = tvs.map((v, j) => v.map((x) => x / (norms[j] + eps)));
  const mean = units[0].map((_, e) => units.reduce((acc, u, j) => acc + w[j] * u[e], 0));
  const mn = Math.hypot(...mean);
  const m = mean.map((x) => x / mn);
  const dots = units.map((u) => u.reduce((acc, x, e) => acc + x * m[e], 0));
  const tangent = m.map((_, e) => units.reduce((acc, u, j) => acc + w[j] * (u[e] - dots[j] * m[e]), 0));
  const tn = Math.hypot(...tangent) + eps;
  const avg = norms.reduce((acc, n, j) => acc + n * w[j], 0);
  return m.map((x, e) => (x * Math.cos(tn) + tangent[e] * (Math.sin(tn) / tn)) * avg);
}

const N = 50;
const base = random(N, 1);
const models = [2, 3, 4].map((s) => Float32Array.from(base, (x, i) => x + random(N, s, 0.1)[i]));
const weights = [0.5, 0.3, 0.2];

function inputs(withBase: boolean): TensorInput[] {
  const list: TensorInput[] = models.map((data, i) => ({
    model: `m${i}`,
    data,
    isBase: false,
    params: { weight: weights[i] },
  }));
  if (withBase) list.push({ model: 'b', data: base, isBase: true, params: {} });
  return list;
}

const run = (list: TensorInput[], params = {}) =>
  multislerp.mergeTensor({
    tensorName: 'x',
    shape: [N],
    inputs: list,
    params,
    random: () => seededStream(0),
  });

test('multislerp with a base: base + barycentric slerp of the task vectors (weights 0.5/0.3/0.2)', () => {
  const got = run(inputs(true));
  const want = reference(
    models.map((m) => Array.from(m, (x, i) => x - base[i])),
    weights,
  ).map((x, i) => x + base[i]);
  want.forEach((w, i) => {
    assert.ok(Math.abs(got[i] - w) <= 2e-6 + 1e-5 * Math.abs(w), `${i}`);
  });
});

test('multislerp without a base interpolates the models themselves; the norm is Σ wᵢ‖xᵢ‖', () => {
  const got = run(inputs(false));
  const want = reference(
    models.map((m) => Array.from(m)),
    weights,
  );
  want.forEach((w, i) => {
    assert.ok(Math.abs(got[i] - w) <= 2e-6 + 1e-5 * Math.abs(w));
  });
  const expectedNorm = models.reduce((acc, m, j) => acc + weights[j] * Math.hypot(...m), 0);
  assert.ok(Math.abs(Math.hypot(...got) - expectedNorm) < 1e-4 * expectedNorm);
});

test('multislerp: unnormalised weights scale the result; antipodal pairs fall back to a lerp', () => {
  const ones = inputs(false).map((input) => ({ ...input, params: { weight: 1 } }));
  const scaled = run(ones, { normalize_weights: false });
  const normalised = run(ones);
  assert.ok(Math.abs(Math.hypot(...scaled) / Math.hypot(...normalised) - 3) < 1e-5);
  const a = random(N, 8);
  const pair: TensorInput[] = [
    { model: 'a', data: a, isBase: false, params: { weight: 1 } },
    { model: 'b', data: Float32Array.from(a, (x) => -x), isBase: false, params: { weight: 1 } },
  ];
  const lerp = run(pair);
  lerp.forEach((x) => {
    assert.ok(Math.abs(x) < 1e-6);
  });
});
