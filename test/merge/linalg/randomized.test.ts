import assert from 'node:assert/strict';
import { test } from 'node:test';
import { matmul, zeros } from '../../../src/merge/linalg/dense.ts';
import { denseSvd } from '../../../src/merge/linalg/jacobi-svd.ts';
import { truncatedSvd } from '../../../src/merge/linalg/randomized-svd.ts';
import { gaussian, seededStream } from '../../../src/merge/linalg/seeded-random.ts';
import { maxAbsDiff, randomMatrix } from './helpers.ts';

/** out×in with a decaying spectrum: a rank-`rank` signal plus small full-rank noise. */
function signalPlusNoise(out: number, inFeatures: number, rank: number, noise: number, seed: number) {
  const m = matmul(randomMatrix(out, rank, seed), randomMatrix(rank, inFeatures, seed + 1));
  const random = seededStream(seed + 2);
  for (let i = 0; i < m.data.length; i++) m.data[i] += noise * gaussian(random);
  return m;
}

test('randomized SVD matches the exact truncated SVD on a 300x280 matrix with a spectral gap', () => {
  const m = signalPlusNoise(300, 280, 12, 0.01, 5);
  const rand = truncatedSvd(m, 12, { random: seededStream(9), exactBelow: 64 });
  assert.equal(rand.exact, false);
  const exact = truncatedSvd(m, 12, { random: seededStream(9), exactBelow: 1000 });
  assert.equal(exact.exact, true);
  assert.ok(maxAbsDiff(rand.s, exact.s) < 1e-8 * exact.s[0], `${maxAbsDiff(rand.s, exact.s)}`);
  assert.ok(Math.abs(rand.relativeError - exact.relativeError) < 1e-8);
  // The residual is the noise: ‖tail‖/‖M‖ from the exact spectrum.
  const all = denseSvd(m).s;
  let tail = 0;
  let total = 0;
  for (let j = 0; j < all.length; j++) {
    total += all[j] ** 2;
    if (j >= 12) tail += all[j] ** 2;
  }
  assert.ok(Math.abs(exact.relativeError - Math.sqrt(tail / total)) < 1e-10);
});

test('randomized SVD is deterministic for a seed', () => {
  const m = signalPlusNoise(200, 180, 6, 0.1, 7);
  const a = truncatedSvd(m, 6, { random: seededStream(3), exactBelow: 16 });
  const b = truncatedSvd(m, 6, { random: seededStream(3), exactBelow: 16 });
  assert.deepEqual(Array.from(a.s), Array.from(b.s));
  assert.deepEqual(Array.from(a.u.data), Array.from(b.u.data));
});

test('an exactly low-rank matrix has a zero relative error', () => {
  const m = signalPlusNoise(150, 120, 5, 0, 13);
  const svd = truncatedSvd(m, 5, { random: seededStream(1), exactBelow: 16 });
  assert.ok(svd.relativeError < 1e-12, `${svd.relativeError}`);
});

test('the zero matrix has relative error 0', () => {
  const svd = truncatedSvd(zeros(20, 30), 4, { random: seededStream(1) });
  assert.equal(svd.relativeError, 0);
});
