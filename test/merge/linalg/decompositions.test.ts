import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  fromArray,
  identity,
  matmul,
  matmulTransposeA,
  transpose,
  zeros,
} from '../../../src/merge/linalg/dense.ts';
import { denseSvd, jacobiSvd } from '../../../src/merge/linalg/jacobi-svd.ts';
import { householderQr } from '../../../src/merge/linalg/qr.ts';
import { maxAbsDiff, randomMatrix } from './helpers.ts';

function reconstruct(u: ReturnType<typeof zeros>, s: Float64Array, v: ReturnType<typeof zeros>) {
  const us = zeros(u.rows, u.cols);
  for (let i = 0; i < u.rows; i++) {
    for (let j = 0; j < u.cols; j++) us.data[i * u.cols + j] = u.data[i * u.cols + j] * s[j];
  }
  return matmul(us, transpose(v));
}

for (const [rows, cols] of [
  [12, 5],
  [5, 12],
  [7, 7],
  [40, 3],
] as const) {
  test(`householderQr ${rows}x${cols}: Q orthonormal, R upper triangular, QR = A`, () => {
    const a = randomMatrix(rows, cols, rows * 100 + cols);
    const { q, r } = householderQr(a);
    const k = Math.min(rows, cols);
    assert.equal(q.cols, k);
    assert.equal(r.rows, k);
    assert.ok(maxAbsDiff(matmulTransposeA(q, q).data, identity(k).data) < 1e-13);
    for (let i = 0; i < k; i++) for (let j = 0; j < i; j++) assert.equal(r.data[i * cols + j], 0);
    assert.ok(maxAbsDiff(matmul(q, r).data, a.data) < 1e-13);
  });

  test(`denseSvd ${rows}x${cols}: orthonormal factors, sorted values, exact reconstruction`, () => {
    const a = randomMatrix(rows, cols, rows * 7 + cols);
    const { u, s, v } = denseSvd(a);
    const k = Math.min(rows, cols);
    assert.equal(s.length, k);
    for (let j = 1; j < k; j++) assert.ok(s[j - 1] >= s[j]);
    assert.ok(maxAbsDiff(matmulTransposeA(u, u).data, identity(k).data) < 1e-12);
    assert.ok(maxAbsDiff(matmulTransposeA(v, v).data, identity(k).data) < 1e-12);
    assert.ok(maxAbsDiff(reconstruct(u, s, v).data, a.data) < 1e-12);
  });
}

test('jacobiSvd recovers a known decomposition (diagonal values of a rotated matrix)', () => {
  // A = R₁·diag(5, 3, 0.5)·R₂ᵀ with plane rotations: the singular values are exactly 5, 3, 0.5.
  const c = Math.cos(0.3);
  const s = Math.sin(0.3);
  const r1 = fromArray(3, 3, [c, -s, 0, s, c, 0, 0, 0, 1]);
  const r2 = fromArray(3, 3, [1, 0, 0, 0, c, -s, 0, s, c]);
  const d = fromArray(3, 3, [5, 0, 0, 0, 3, 0, 0, 0, 0.5]);
  const a = matmul(matmul(r1, d), transpose(r2));
  const svd = jacobiSvd(a);
  assert.ok(maxAbsDiff(svd.s, [5, 3, 0.5]) < 1e-14);
});

test('jacobiSvd of a rank-deficient matrix gives exact zeros and still reconstructs', () => {
  const left = randomMatrix(9, 2, 1);
  const right = randomMatrix(2, 6, 2);
  const a = matmul(left, right);
  const { u, s, v } = jacobiSvd(a);
  assert.ok(s[1] > 1e-3);
  for (let j = 2; j < s.length; j++) assert.ok(s[j] < 1e-12 * s[0], `s[${j}] = ${s[j]}`);
  assert.ok(maxAbsDiff(reconstruct(u, s, v).data, a.data) < 1e-12);
});

test('jacobiSvd of the zero matrix', () => {
  const { s } = jacobiSvd(zeros(4, 3));
  assert.deepEqual(Array.from(s), [0, 0, 0]);
});
