import assert from 'node:assert/strict';
import { test } from 'node:test';
import { identity, matmul, matmulTransposeA, transpose, zeros } from '../../../src/merge/linalg/dense.ts';
import { denseSvd } from '../../../src/merge/linalg/jacobi-svd.ts';
import { productSvd, svdToLoraFactors } from '../../../src/merge/linalg/low-rank-svd.ts';
import { maxAbsDiff, randomMatrix } from './helpers.ts';

test('productSvd of B·A matches the dense SVD without forming B·A', () => {
  const b = randomMatrix(60, 6, 11);
  const a = randomMatrix(6, 45, 12);
  const dense = denseSvd(matmul(b, a));
  const factored = productSvd(b, a);
  assert.equal(factored.s.length, 6);
  assert.ok(maxAbsDiff(factored.s, dense.s.subarray(0, 6)) < 1e-11 * dense.s[0]);
  assert.ok(maxAbsDiff(matmulTransposeA(factored.u, factored.u).data, identity(6).data) < 1e-12);
  assert.ok(maxAbsDiff(matmulTransposeA(factored.v, factored.v).data, identity(6).data) < 1e-12);
  const { b: nb, a: na, rank } = svdToLoraFactors(factored);
  const rebuilt = matmul(
    { rows: 60, cols: rank, data: Float64Array.from(nb) },
    {
      rows: rank,
      cols: 45,
      data: Float64Array.from(na),
    },
  );
  const exact = matmul(b, a);
  assert.ok(maxAbsDiff(rebuilt.data, exact.data) < 1e-5 * dense.s[0]);
});

test('productSvd truncation keeps the leading triplets (Eckart–Young error)', () => {
  const b = randomMatrix(30, 8, 21);
  const a = randomMatrix(8, 20, 22);
  const full = denseSvd(matmul(b, a));
  const top = productSvd(b, a, 3);
  assert.equal(top.s.length, 3);
  assert.ok(maxAbsDiff(top.s, full.s.subarray(0, 3)) < 1e-11 * full.s[0]);
  const us = zeros(30, 3);
  for (let i = 0; i < 30; i++)
    for (let j = 0; j < 3; j++) us.data[i * 3 + j] = top.u.data[i * 3 + j] * top.s[j];
  const approx = matmul(us, transpose(top.v));
  const exact = matmul(b, a);
  let residual = 0;
  for (let i = 0; i < exact.data.length; i++) residual += (exact.data[i] - approx.data[i]) ** 2;
  let tail = 0;
  for (let j = 3; j < full.s.length; j++) tail += full.s[j] ** 2;
  assert.ok(Math.abs(Math.sqrt(residual) - Math.sqrt(tail)) < 1e-9 * full.s[0]);
});

test('productSvd pads with zero triplets when the rank asked exceeds the product rank', () => {
  const b = randomMatrix(10, 2, 31);
  const a = randomMatrix(2, 7, 32);
  const svd = productSvd(b, a, 5);
  assert.equal(svd.s.length, 5);
  assert.equal(svd.s[2], 0);
  assert.equal(svd.s[4], 0);
});

test('productSvd when the rank exceeds out (wide QR of B)', () => {
  const b = randomMatrix(4, 9, 41);
  const a = randomMatrix(9, 13, 42);
  const dense = denseSvd(matmul(b, a));
  const factored = productSvd(b, a);
  assert.ok(maxAbsDiff(factored.s.subarray(0, 4), dense.s) < 1e-11 * dense.s[0]);
});
