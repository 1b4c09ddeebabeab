import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { minimizeCmaEs, symmetricEigen } from '../../../src/eval/data-driven/cma-es.ts';

describe('CMA-ES', () => {
  it('finds the minimum of a known ill-conditioned, rotated quadratic inside the box', async () => {
    const target = [0.7, -1.1, 0.3];
    // f(x) = (x − t)ᵀ·H·(x − t), H positive definite (minors 10, 11, 3), ill-conditioned and off-diagonal coupling.
    const H = [
      [10, 3, 0],
      [3, 2, 0.5],
      [0, 0.5, 0.5],
    ];
    const f = (x: number[]) => {
      const d = x.map((xi, i) => xi - target[i]);
      return d.reduce((s, di, i) => s + di * H[i].reduce((r, hij, j) => r + hij * d[j], 0), 0);
    };
    const result = await minimizeCmaEs(f, {
      start: [0, 0, 0],
      sigma: 0.5,
      budget: 600,
      lower: -1.5,
      upper: 1.5,
      seed: 3,
    });
    assert.equal(result.evaluations, 600);
    assert.equal(result.history.length, 600);
    result.best.forEach((x, i) => {
      assert.ok(Math.abs(x - target[i]) < 1e-3, `x${i} = ${x}, want ${target[i]}`);
    });
    assert.ok(result.bestValue < 1e-6, `f = ${result.bestValue}`);
  });

  it('keeps every candidate in the box and finds a minimum on its boundary', async () => {
    const result = await minimizeCmaEs((x) => (x[0] - 4) ** 2 + (x[1] + 0.5) ** 2, {
      start: [0, 0],
      sigma: 0.5,
      budget: 200,
      lower: -1.5,
      upper: 1.5,
      seed: 1,
    });
    for (const { point } of result.history) for (const x of point) assert.ok(x >= -1.5 && x <= 1.5);
    assert.ok(
      Math.abs(result.best[0] - 1.5) < 1e-3 && Math.abs(result.best[1] + 0.5) < 1e-2,
      `${result.best}`,
    );
  });

  it('is reproducible from its seed, evaluates the start first and never returns worse than it', async () => {
    const f = (x: number[]) => Math.abs(x[0] - 0.2) + Math.abs(x[1] - 0.9);
    const options = { start: [0.5, 0.5], sigma: 0.3, budget: 10, lower: -1.5, upper: 1.5, seed: 9 };
    const a = await minimizeCmaEs(f, options);
    const b = await minimizeCmaEs(f, options);
    assert.deepEqual(a.history, b.history);
    assert.deepEqual(a.history[0].point, [0.5, 0.5]);
    assert.ok(a.bestValue <= f([0.5, 0.5]));
    const c = await minimizeCmaEs(f, { ...options, seed: 10 });
    assert.notDeepEqual(a.history, c.history);
  });

  it('symmetricEigen reconstructs the matrix', () => {
    const m = [
      [4, 1, 2],
      [1, 3, 0],
      [2, 0, 5],
    ];
    const { values, vectors } = symmetricEigen(m);
    for (let i = 0; i < 3; i++)
      for (let j = 0; j < 3; j++) {
        const r = values.reduce((s, d, k) => s + vectors[i][k] * d * vectors[j][k], 0);
        assert.ok(Math.abs(r - m[i][j]) < 1e-10);
      }
  });
});
