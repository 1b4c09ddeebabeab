import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  accuracy,
  disagreement,
  disentanglementError,
  linspace,
  normalizedAccuracy,
  taskVectorAnalysis,
} from '../../src/eval/metrics.ts';

describe('evaluation metrics', () => {
  it('accuracy and normalized accuracy', () => {
    assert.equal(accuracy([1, 2, 3, 4], [1, 2, 0, 4]), 0.75);
    const { perTask, average } = normalizedAccuracy({ a: 0.45, b: 0.8 }, { a: 0.9, b: 0.8 });
    assert.deepEqual(perTask, { a: 0.5, b: 1 });
    assert.equal(average, 0.75);
    assert.throws(() => normalizedAccuracy({ c: 0.5 }, { a: 1 }), /no individual accuracy/);
  });

  it('task-vector cosine, norms and sign conflicts', () => {
    const a = Float32Array.from([1, 0, -2, 2]);
    const b = Float32Array.from([2, 5, 1, 0]);
    const { norms, cosine, signConflictRate } = taskVectorAnalysis([a, b]);
    assert.deepEqual(norms, [3, Math.sqrt(30)]);
    assert.ok(Math.abs(cosine[0][1] - 0 / (3 * Math.sqrt(30))) < 1e-12); // 2 + 0 - 2 + 0 = 0
    assert.equal(cosine[0][0], 1);
    assert.equal(signConflictRate[0][1], 0.5); // both non-zero at 0 (agree) and 2 (conflict)
  });

  it('disentanglement error is zero for predictions that ignore the other task, and counts disagreements', async () => {
    const grid = linspace(-2, 2, 5);
    assert.deepEqual(grid, [-2, -1, 0, 1, 2]);
    const independent = await disentanglementError(grid, async (l1, l2, task) => [
      task === 0 ? Math.sign(l1) : Math.sign(l2),
    ]);
    assert.ok(independent.every((row) => row.every((v) => v === 0)));
    const entangled = await disentanglementError(grid, async (l1, l2, task) => [
      Math.sign(task === 0 ? l1 + l2 : l2),
    ]);
    assert.equal(entangled[4][0], 1); // λ₁ = 2, λ₂ = −2: task 0 flips from + to 0
    assert.equal(disagreement([1, 2], [1, 3]), 0.5);
  });
});
