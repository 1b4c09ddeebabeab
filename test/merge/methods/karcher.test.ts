import assert from 'node:assert/strict';
import path from 'node:path';
import { test } from 'node:test';
import { gaussian, seededStream } from '../../../src/merge/linalg/seeded-random.ts';
import type { TensorInput } from '../../../src/merge/method.ts';
import { karcher, karcherMean } from '../../../src/merge/methods/karcher.ts';
import { goldenCaseDir, readGoldenTensors } from '../../helpers/golden.ts';

function random(n: number, seed: number, scale = 1): Float32Array {
  const r = seededStream(seed);
  return Float32Array.from({ length: n }, () => scale * gaussian(r));
}

/** Like the README's inputs: base + coefᵢ·c + sᵢ·nᵢ. */
function family(
  n: number,
  baseScale: number,
  cScale: number,
  noise: number[],
  seed: number,
  offset = 0,
): Float32Array[] {
  const base = random(n, seed, baseScale).map((x) => x + offset);
  const c = random(n, seed + 1, cScale);
  return [1, 0.5, 1.5].map((coef, i) => {
    const ni = random(n, seed + 2 + i);
    return Float32Array.from(base, (x, e) => x + coef * c[e] + noise[i] * ni[e]);
  });
}

/** Float64 restatement of karcher_merge_tensors with alphas 1/N. */
function reference(xs: Float32Array[], maxIter: number, tol: number): { out: number[]; iterations: number } {
  const n = xs[0].length;
  const norms = xs.map((x) => Math.hypot(...x));
  const units = xs.map((x, j) => Array.from(x, (v) => v / norms[j]));
  const alpha = 1 / xs.length;
  let u = units[0].map((_, e) => units.reduce((acc, un) => acc + alpha * un[e], 0));
  const un = Math.hypot(...u);
  u = u.map((v) => v / un);
  let iterations = 0;
  for (let it = 0; it < maxIter; it++) {
    iterations++;
    const tangent = new Array<number>(n).fill(0);
    for (const unit of units) {
      const dot = Math.max(
        -1,
        Math.min(
          1,
          unit.reduce((acc, v, e) => acc + v * u[e], 0),
        ),
      );
      const theta = Math.acos(dot);
      if (theta < tol) continue;
      for (let e = 0; e < n; e++) tangent[e] += ((alpha * theta) / Math.sin(theta)) * (unit[e] - dot * u[e]);
    }
    const tn = Math.hypot(...tangent);
    if (tn < tol) break;
    u = u.map((v, e) => Math.cos(tn) * v + Math.sin(tn) * (tangent[e] / tn));
    const norm = Math.hypot(...u);
    u = u.map((v) => v / norm);
  }
  const scale = norms.reduce((acc, norm) => acc + alpha * norm, 0);
  return { out: u.map((v) => scale * v), iterations };
}

test('karcher matches the float64 restatement; spread inputs take several iterations', () => {
  const xs = family(64, 0.05, 0.02, [0.02, 0.03, 0.01], 1);
  const got = karcherMean(xs, 10, 1e-5);
  const want = reference(xs, 10, 1e-5);
  assert.equal(got.iterations, want.iterations);
  assert.ok(got.iterations >= 2, `${got.iterations}`);
  want.out.forEach((w, i) => {
    assert.ok(Math.abs(got.data[i] - w) <= 2e-6 + 1e-5 * Math.abs(w), `${i}`);
  });
});

test('karcher: near-identical directions (a layernorm-like 1 + ε tensor) stop in the first iteration', () => {
  const xs = family(32, 0.05, 0.003, [0.002, 0.003, 0.001], 5, 1);
  const got = karcherMean(xs, 10, 1e-5);
  assert.equal(got.iterations, 1);
  const want = reference(xs, 10, 1e-5);
  want.out.forEach((w, i) => {
    assert.ok(Math.abs(got.data[i] - w) <= 2e-6 + 1e-5 * Math.abs(w));
  });
});

test('karcher of two inputs is the geodesic midpoint scaled by their mean norm', () => {
  const a = random(40, 9);
  const b = random(40, 10, 3);
  const got = karcherMean([a, b], 50, 1e-9).data;
  const na = Math.hypot(...a);
  const nb = Math.hypot(...b);
  const mid = Array.from(a, (x, i) => x / na + b[i] / nb);
  const nm = Math.hypot(...mid);
  mid.forEach((m, i) => {
    assert.ok(Math.abs(got[i] - ((na + nb) / 2) * (m / nm)) < 1e-5);
  });
});

test('karcher ignores per-model weights and averages the base like any input; max_iter bounds the loop', () => {
  const xs = family(48, 0.05, 0.02, [0.02, 0.03, 0.01], 20);
  const inputs = (weights: number[]): TensorInput[] =>
    xs.map((data, i) => ({ model: `m${i}`, data, isBase: i === 2, params: { weight: weights[i] } }));
  const ctx = (weights: number[], maxIter: number) => ({
    tensorName: 'x',
    shape: [48],
    inputs: inputs(weights),
    params: { max_iter: maxIter, tol: 1e-5 },
    random: () => seededStream(0),
  });
  const a = karcher.mergeTensor(ctx([1, 1, 1], 10));
  const b = karcher.mergeTensor(ctx([5, 0.1, 2], 10));
  assert.deepEqual(Array.from(a), Array.from(b));
  assert.deepEqual(Array.from(a), Array.from(karcherMean(xs, 10, 1e-5).data));
  assert.equal(karcherMean(xs, 1, 1e-5).iterations, 1);
  assert.equal(karcher.baseModel, 'optional');
});

test('karcher on the golden inputs (m0..m2): 3 iterations entered for the matrices, 1 for the layernorm', async () => {
  const dir = goldenCaseDir('mergekit_model_stock'); // the same m0..m2 copies every mergekit case gets
  const models = await Promise.all(
    [0, 1, 2].map((i) => readGoldenTensors(path.join(dir, `m${i}.safetensors`))),
  );
  const expected: Record<string, number> = {
    'model.layers.0.self_attn.q_proj.weight': 3,
    'model.layers.0.mlp.up_proj.weight': 3,
    'model.layers.0.input_layernorm.weight': 1,
    'lm_head.weight': 3,
  };
  for (const [name, iterations] of Object.entries(expected)) {
    const result = karcherMean(
      models.map((m) => m.get(name)!.data),
      10,
      1e-5,
    );
    assert.equal(result.iterations, iterations, name);
  }
});
