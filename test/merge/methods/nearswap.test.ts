import assert from 'node:assert/strict';
import { test } from 'node:test';
import { seededStream } from '../../../src/merge/linalg/seeded-random.ts';
import { nearswap } from '../../../src/merge/methods/nearswap.ts';

test('nearswap (t = 0.02): close entries are taken whole, far ones by t/|base − x|', () => {
  const base = Float32Array.from([0, 1, 1, -2, 0.5, 3]);
  const other = Float32Array.from([0.01, 1.02, 1.5, -1, 0.5, 2.9]);
  const got = nearswap.mergeTensor({
    tensorName: 'x',
    shape: [6],
    inputs: [
      { model: 'b', data: base, isBase: true, params: {} },
      { model: 'm0', data: other, isBase: false, params: {} },
    ],
    params: { t: 0.02 },
    random: () => seededStream(0),
  });
  // Float64 restatement: w = clamp(t / max(|b − x|, 1e-6), 0, 1); w·x + (1 − w)·b.
  const want = Array.from(base, (b, i) => {
    const w = Math.min(1, Math.max(0, 0.02 / Math.max(Math.abs(b - other[i]), 1e-6)));
    return w * other[i] + (1 - w) * b;
  });
  want.forEach((w, i) => {
    assert.ok(Math.abs(got[i] - w) < 1e-6, `${i}: ${got[i]} vs ${w}`);
  });
  assert.ok(Math.abs(got[0] - 0.01) < 1e-7); // |d| = 0.01 ≤ t: taken whole
  assert.ok(Math.abs(got[2] - (1 + 0.04 * 0.5)) < 1e-6); // w = 0.02/0.5
  assert.equal(got[4], 0.5); // equal entries stay
});

test('nearswap declares t as required and needs the base', () => {
  assert.deepEqual(
    nearswap.parameters.map((p) => [p.name, p.required]),
    [['t', true]],
  );
  assert.equal(nearswap.baseModel, 'required');
  assert.throws(() =>
    nearswap.mergeTensor({
      tensorName: 'x',
      shape: [1],
      inputs: [{ model: 'm', data: new Float32Array(1), isBase: false, params: {} }],
      params: { t: 1 },
      random: () => seededStream(0),
    }),
  );
});
