import assert from 'node:assert/strict';
import { test } from 'node:test';
import { gaussian, seededStream } from '../../../src/merge/linalg/seeded-random.ts';
import type { TensorInput } from '../../../src/merge/method.ts';
import { sce } from '../../../src/merge/methods/sce.ts';

function random(n: number, seed: number, scale = 1): Float32Array {
  const r = seededStream(seed);
  return Float32Array.from({ length: n }, () => scale * gaussian(r));
}

const N = 60;
const base = random(N, 1);
const models = [2, 3, 4].map((s, k) =>
  Float32Array.from(base, (x, i) => x + random(N, s, 0.02 * (k + 1))[i]),
);

/** Float64 restatement of sce_merge: variance top-k mask, mean-square weights, sum sign election. */
function reference(selectTopk: number): number[] {
  let tvs = models.map((m) => Array.from(m, (x, i) => Math.fround(x - base[i])));
  if (selectTopk < 1) {
    const variance = base.map((_, i) => {
      const mean = tvs.reduce((acc, t) => acc + t[i], 0) / tvs.length;
      return tvs.reduce((acc, t) => acc + (t[i] - mean) ** 2, 0) / tvs.length;
    });
    const nonzero = Array.from(variance).filter((v) => v !== 0).length;
    const k = Math.trunc(nonzero * selectTopk);
    const keep = new Set(
      Array.from(variance, (v, i) => [v, i] as const)
        .sort((a, b) => b[0] - a[0])
        .slice(0, k)
        .map(([, i]) => i),
    );
    tvs = tvs.map((t) => t.map((x, i) => (keep.has(i) ? x : 0)));
  }
  const ms = tvs.map((t) => t.reduce((acc, x) => acc + x * x, 0) / N);
  const total = ms.reduce((a, b) => a + b, 0);
  const w = ms.map((m) => m / total);
  return Array.from(base, (b, i) => {
    const sign = tvs.reduce((acc, t) => acc + t[i], 0) >= 0 ? 1 : -1;
    let num = 0;
    let den = 0;
    tvs.forEach((t, j) => {
      if (Math.sign(t[i]) === sign) {
        num += w[j] * t[i];
        den += w[j];
      }
    });
    return b + num / Math.max(den, 1e-6);
  });
}

const inputs: TensorInput[] = [
  { model: 'b', data: base, isBase: true, params: {} },
  ...models.map((data, i) => ({ model: `m${i}`, data, isBase: false, params: {} })),
];
const run = (params: Record<string, number>) =>
  sce.mergeTensor({ tensorName: 'x', shape: [N], inputs, params, random: () => seededStream(0) });

for (const topk of [0.3, 1]) {
  test(`sce (select_topk ${topk}) matches the float64 restatement`, () => {
    const got = run({ select_topk: topk });
    reference(topk).forEach((w, i) => {
      assert.ok(Math.abs(got[i] - w) <= 1e-6 + 1e-5 * Math.abs(w), `${i}`);
    });
  });
}

test('sce select_topk 0.3 keeps int(count_nonzero(var)·0.3) positions; the rest stay at the base', () => {
  const got = run({ select_topk: 0.3 });
  const changed = Array.from(got).filter((x, i) => x !== base[i]).length;
  assert.ok(changed <= Math.trunc(N * 0.3), `${changed}`);
  assert.ok(changed >= Math.trunc(N * 0.3) - 2);
});

test('sce select_topk 0 keeps nothing: the result is the base', () => {
  assert.deepEqual(Array.from(run({ select_topk: 0 })), Array.from(base));
});

test('sce declares select_topk (default 1) and needs a base', () => {
  assert.equal(sce.paper, 'https://arxiv.org/abs/2408.07990');
  assert.deepEqual(
    sce.parameters.map((p) => [p.name, p.default]),
    [
      ['select_topk', 1],
      ['int8_mask', false],
    ],
  );
  assert.equal(sce.baseModel, 'required');
});
