import assert from 'node:assert/strict';
import { test } from 'node:test';
import { keepLargestMagnitudes, markByMagnitude } from '../../src/merge/kernels/magnitude-select.ts';
import { KeyedRandomStream } from '../../src/merge/random.ts';
import { sparsifyMagnitude, sparsifyMagnitudeOutliers } from '../../src/merge/sparsify.ts';

function sortSelect(values: Float32Array, k: number, smallest: boolean): Set<number> {
  const idx = Array.from(values, (_, i) => i);
  idx.sort(
    (a, b) =>
      (smallest ? Math.abs(values[a]) - Math.abs(values[b]) : Math.abs(values[b]) - Math.abs(values[a])) ||
      a - b,
  );
  return new Set(idx.slice(0, k));
}

test('radix top-k marks exactly k entries, the same as a stable sort (ties to the lower index)', () => {
  const random = new KeyedRandomStream(1, 'kernels', 'values');
  for (const n of [1, 7, 100, 5000]) {
    // Few distinct magnitudes with both signs: many ties at every cutoff.
    const values = Float32Array.from({ length: n }, () => (Math.floor(random.next() * 13) - 6) * 0.25);
    for (const k of [0, 1, Math.floor(n / 3), n - 1, n]) {
      for (const smallest of [false, true]) {
        const mask = new Uint8Array(n);
        markByMagnitude(values, k, mask, { smallest });
        const marked = new Set([...mask.keys()].filter((i) => mask[i] === 1));
        assert.equal(marked.size, Math.max(0, Math.min(k, n)), `n ${n} k ${k}`);
        assert.deepEqual(marked, sortSelect(values, k, smallest), `n ${n} k ${k} smallest ${smallest}`);
      }
    }
  }
});

test('keepLargestMagnitudes zeroes exactly the entries a stable sort would drop', () => {
  const random = new KeyedRandomStream(2, 'kernels', 'keep');
  for (const n of [1, 9, 4096]) {
    const values = Float32Array.from({ length: n }, () => (Math.floor(random.next() * 9) - 4) * 0.5 + 0.125);
    for (const k of [0, 1, Math.floor(n / 2), n]) {
      const kept = values.slice();
      keepLargestMagnitudes(kept, k);
      const expected = sortSelect(values, k, false);
      for (let i = 0; i < n; i++)
        assert.equal(kept[i], expected.has(i) ? values[i] : 0, `n ${n} k ${k} i ${i}`);
    }
  }
});

test('higher-index tie breaking takes the last of equal magnitudes', () => {
  const values = new Float32Array([1, 1, 1, 1]);
  const mask = new Uint8Array(4);
  markByMagnitude(values, 2, mask, { ties: 'higher-index' });
  assert.deepEqual([...mask], [0, 0, 1, 1]);
});

test('magnitude sparsifier keeps int(density·numel) and refuses to keep none', () => {
  const delta = new Float32Array([0.1, -0.5, 0.3, -0.2, 0.05]);
  sparsifyMagnitude(delta, 0.4, false);
  assert.deepEqual([...delta], [0, -0.5, Math.fround(0.3), 0, 0]);
  assert.throws(() => sparsifyMagnitude(new Float32Array(4), 0.2, false), /keeps no entry/);
  const unchanged = new Float32Array([1, 2]);
  sparsifyMagnitude(unchanged, 1, true);
  assert.deepEqual([...unchanged], [1, 2]);
});

test('breadcrumbs drops the top gamma and the bottom; compat drops all when n_top = 0', () => {
  const values = Float32Array.from({ length: 10 }, (_, i) => (i + 1) * (i % 2 ? -1 : 1));
  const delta = values.slice();
  sparsifyMagnitudeOutliers(delta, 0.6, 0.2, false, false);
  // n_top = 2 (|10|, |9| dropped), n_bot = 10 - 6 - 2 = 2 (|1|, |2| dropped).
  assert.deepEqual([...delta], [0, 0, 3, -4, 5, -6, 7, -8, 0, 0]);
  const small = values.slice();
  sparsifyMagnitudeOutliers(small, 0.9, 0.05, false, false);
  assert.deepEqual([...small], [0, ...values.slice(1)]);
  const compat = values.slice();
  sparsifyMagnitudeOutliers(compat, 0.9, 0.05, false, true);
  assert.deepEqual([...compat], new Array(10).fill(0));
});

test('keyed random streams depend only on (seed, tensor, stream)', () => {
  const draw = (seed: number, tensor: string, stream: string) => {
    const r = new KeyedRandomStream(seed, tensor, stream);
    return Array.from({ length: 5 }, () => r.next());
  };
  assert.deepEqual(draw(1, 'a', 'model:0'), draw(1, 'a', 'model:0'));
  assert.notDeepEqual(draw(1, 'a', 'model:0'), draw(2, 'a', 'model:0'));
  assert.notDeepEqual(draw(1, 'a', 'model:0'), draw(1, 'b', 'model:0'));
  assert.notDeepEqual(draw(1, 'a', 'model:0'), draw(1, 'a', 'model:1'));
  assert.notDeepEqual(draw(2 ** 40, 'a', 'x'), draw(0, 'a', 'x'));
  const r = new KeyedRandomStream(3, 't', 's');
  let sum = 0;
  for (let i = 0; i < 100000; i++) {
    const u = r.next();
    assert.ok(u >= 0 && u < 1);
    sum += u;
  }
  assert.ok(Math.abs(sum / 100000 - 0.5) < 0.005);
});
