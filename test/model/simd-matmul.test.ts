import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import * as tf from '@tensorflow/tfjs';
import { seededUniform } from '../../src/model/random.ts';
import { matMulKernelsOverridden } from '../../src/model/simd/matmul-kernel.ts';
import { assertClose, wasmBackend } from './helpers.ts';

/** Seeded values in [-2, 2). */
function values(count: number, seed: number): Float32Array {
  const uniform = seededUniform(seed);
  return Float32Array.from({ length: count }, () => uniform() * 4 - 2);
}

/**
 * op(a)·op(b) (+ bias) as the kernel computes it: per output, bias (or 0) then each a·b product added in k order,
 * every step rounded to float32. Batch axes: equal, or one side's all 1.
 */
function reference(
  a: tf.Tensor,
  b: tf.Tensor,
  transposeA: boolean,
  transposeB: boolean,
  bias?: Float32Array,
): Float32Array {
  const [a0, a1] = a.shape.slice(-2);
  const [b0, b1] = b.shape.slice(-2);
  const [m, k] = transposeA ? [a1, a0] : [a0, a1];
  const n = transposeB ? b0 : b1;
  const batchA = a.shape.slice(0, -2).reduce((x, y) => x * y, 1);
  const batchB = b.shape.slice(0, -2).reduce((x, y) => x * y, 1);
  const batch = Math.max(batchA, batchB);
  const av = a.dataSync();
  const bv = b.dataSync();
  const out = new Float32Array(batch * m * n);
  for (let t = 0; t < batch; t++) {
    const aBase = batchA > 1 ? t * m * k : 0;
    const bBase = batchB > 1 ? t * k * n : 0;
    for (let i = 0; i < m; i++) {
      for (let j = 0; j < n; j++) {
        let acc = bias ? bias[j] : 0;
        for (let p = 0; p < k; p++) {
          const x = av[aBase + (transposeA ? p * m + i : i * k + p)];
          const y = bv[bBase + (transposeB ? j * k + p : p * n + j)];
          acc = Math.fround(acc + Math.fround(x * y));
        }
        out[t * m * n + i * n + j] = acc;
      }
    }
  }
  return out;
}

/** An operand of logical shape [...outer, rows, cols], stored transposed when `transposed`. */
function operand(outer: number[], rows: number, cols: number, transposed: boolean, seed: number): tf.Tensor {
  const shape = [...outer, ...(transposed ? [cols, rows] : [rows, cols])];
  return tf.tensor(
    values(
      shape.reduce((x, y) => x * y, 1),
      seed,
    ),
    shape,
  );
}

const FLAGS: Array<[boolean, boolean]> = [
  [false, false],
  [true, false],
  [false, true],
  [true, true],
];

// lorafuse's SIMD matmul, which serves tfjs's BatchMatMul and _FusedMatMul on wasm.
describe('SIMD matmul on the wasm backend', () => {
  before(wasmBackend);

  it("serves tfjs's BatchMatMul and _FusedMatMul kernels", () => {
    assert.equal(matMulKernelsOverridden(), true);
  });

  it('equals the in-order float32 sum exactly, for every transpose, on edge sizes and k past one slice', () => {
    // m odd (the single-row band), n not a multiple of 4 or 16 (the narrow blocks), k = 0, k > 128 (k slices),
    // m ≥ 1024 (a transposed A is copied slice by slice).
    const sizes = [
      [1031, 130, 20],
      [1, 1, 1],
      [7, 9, 37],
      [2, 3, 16],
      [33, 300, 21],
      [5, 0, 9],
      [64, 130, 64],
      [3, 257, 4],
    ];
    for (const [m, k, n] of sizes) {
      for (const [transposeA, transposeB] of FLAGS) {
        tf.tidy(() => {
          const a = operand([], m, k, transposeA, m + k);
          const b = operand([], k, n, transposeB, n + 1);
          const actual = tf.matMul(a, b, transposeA, transposeB);
          assert.deepEqual(actual.shape, [m, n]);
          assert.deepEqual(
            actual.dataSync(),
            reference(a, b, transposeA, transposeB),
            `${m}×${k}×${n} ${transposeA} ${transposeB}`,
          );
        });
      }
    }
  });

  it('adds a fused bias exactly, also across k slices, and leaves an activation to tfjs', () => {
    // tfjs-backend-wasm's own fused kernel ignores the transpose flags when it applies an activation (relu of
    // op(a)·op(b) comes out wrong), so the activation is checked without them; lorafuse fuses no activations.
    for (const [m, k, n] of [
      [9, 200, 20],
      [4, 5, 3],
    ]) {
      for (const [transposeA, transposeB] of FLAGS) {
        tf.tidy(() => {
          const a = operand([], m, k, transposeA, 3);
          const b = operand([], k, n, transposeB, 4);
          const biasValues = values(n, 5);
          const bias = tf.tensor1d(biasValues);
          const fused = tf.fused.matMul({ a, b, bias, transposeA, transposeB });
          assert.deepEqual(fused.dataSync(), reference(a, b, transposeA, transposeB, biasValues));
          if (!transposeA && !transposeB) {
            const relu = tf.fused.matMul({ a, b, bias, activation: 'relu' });
            assertClose(relu.dataSync(), tf.relu(fused).dataSync(), 1e-5, 1e-5);
          }
        });
      }
    }
  });

  it('runs batched products, with a batch of one on either side broadcast', () => {
    const cases: Array<[number[], number[]]> = [
      [[3], [3]],
      [
        [2, 3],
        [2, 3],
      ],
      [[4], []],
      [[1], [5]],
    ];
    for (const [outerA, outerB] of cases) {
      for (const [transposeA, transposeB] of FLAGS) {
        tf.tidy(() => {
          const a = operand(outerA, 6, 19, transposeA, 7);
          const b = operand(outerB, 19, 10, transposeB, 8);
          const actual = tf.matMul(a, b, transposeA, transposeB);
          const outer = tf.broadcast_util.assertAndGetBroadcastShape(outerA, outerB);
          assert.deepEqual(actual.shape, [...outer, 6, 10]);
          assert.deepEqual(actual.dataSync(), reference(a, b, transposeA, transposeB));
        });
      }
    }
  });

  it("gives tfjs's cpu gradients, and gradients of gradients, for every transpose", async () => {
    const run = (transposeA: boolean, transposeB: boolean) =>
      tf.tidy(() => {
        const a = operand([], 6, 11, transposeA, 9);
        const b = operand([], 11, 7, transposeB, 10);
        const w = tf.tensor(values(42, 11), [6, 7]);
        const f = (x: tf.Tensor, y: tf.Tensor) =>
          tf.sum(tf.mul(tf.square(tf.matMul(x, y, transposeA, transposeB)), w));
        const [da, db] = tf.grads(f)([a, b]);
        // A gradient of a gradient: d/da of Σ (∂f/∂b)².
        const second = tf.grad((x: tf.Tensor) => tf.sum(tf.square(tf.grads(f)([x, b])[1])))(a);
        return [da, db, second].map((t) => t.dataSync());
      });
    for (const [transposeA, transposeB] of FLAGS) {
      const onWasm = run(transposeA, transposeB);
      await tf.setBackend('cpu');
      const onCpu = run(transposeA, transposeB);
      await tf.setBackend('wasm');
      for (let i = 0; i < onWasm.length; i++) assertClose(onWasm[i], onCpu[i], 1e-4, 1e-4);
    }
  });
});
