import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import * as tf from '@tensorflow/tfjs';
import { geluErf } from '../../src/model/nn/functional.ts';
import { simdKernelsActive } from '../../src/model/simd/simd-kernels.ts';
import { assertClose, testBackend } from './helpers.ts';

// lorafuse's SIMD kernels (wasm backend) against the textbook formulas through tfjs's own kernels.
describe('SIMD kernels on the wasm backend', () => {
  before(testBackend);
  const onWasm = () => tf.getBackend() === 'wasm';

  it('are active on wasm', (t) => {
    if (!onWasm()) return t.skip('not on the wasm backend');
    assert.equal(simdKernelsActive(), true);
  });

  const referenceGelu = (t: tf.Tensor) => tf.mul(tf.mul(t, 0.5), tf.add(1, tf.erf(tf.mul(t, Math.SQRT1_2))));

  it('GELU (erf) and its gradient, on sizes that are not a multiple of 4 (the scalar tail)', () => {
    for (const shape of [[15], [3, 7], [2, 3, 65], [1]]) {
      tf.tidy(() => {
        const x = tf.randomNormal(shape, 0, 3, 'float32', 7);
        const w = tf.randomNormal(shape, 0, 1, 'float32', 8);
        assertClose(geluErf(x).dataSync(), referenceGelu(x).dataSync(), 1e-5, 1e-6);
        const loss = (f: (t: tf.Tensor) => tf.Tensor) => (t: tf.Tensor) => tf.sum(tf.mul(f(t), w));
        assertClose(
          tf.grad(loss(geluErf))(x).dataSync(),
          tf.grad(loss(referenceGelu))(x).dataSync(),
          1e-5,
          1e-5,
        );
      });
    }
  });

  it('GELU (erf) at the extremes: ±0, ±large, +inf, NaN', () => {
    tf.tidy(() => {
      const x = tf.tensor1d([0, -0, 1e-8, -1e-8, 6, -6, 40, -40, Infinity, Number.NaN]);
      const out = geluErf(x).dataSync();
      // Φ is clipped at ±4√2, where the rational form leaves ~6e-8 (as the tf-op path does): 40·6e-8 ≈ 2.4e-6.
      assertClose(out.slice(0, 8), referenceGelu(x).dataSync().slice(0, 8), 1e-6, 3e-6);
      assert.equal(out[8], Infinity);
      assert.ok(Number.isNaN(out[9]));
    });
  });

  it('GELU (erf): gradients of gradients stay exact (second derivative φ(x)·(2 − x²))', () => {
    tf.tidy(() => {
      const x = tf.randomNormal([37], 0, 2, 'float32', 9);
      const second = (f: (t: tf.Tensor) => tf.Tensor) =>
        tf.grad((t: tf.Tensor) => tf.sum(tf.grad((u: tf.Tensor) => tf.sum(f(u)))(t)));
      assertClose(second(geluErf)(x).dataSync(), second(referenceGelu)(x).dataSync(), 1e-4, 1e-5);
    });
  });
});
