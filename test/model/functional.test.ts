import { before, describe, it } from 'node:test';
import * as tf from '@tensorflow/tfjs';
import { geluErf, geluTanh, layerNorm } from '../../src/model/nn/functional.ts';
import { assertClose, testBackend } from './helpers.ts';

// The hand-written gradients against autograd through the textbook formulas (float32: rtol/atol 1e-5).
describe('hand-written gradients', () => {
  before(testBackend);
  const x = () => tf.randomNormal([4, 6, 8], 0, 2, 'float32', 1);
  const weights = () => tf.randomNormal([4, 6, 8], 0, 1, 'float32', 2); // makes the loss non-trivial

  const check = (fast: (t: tf.Tensor) => tf.Tensor, reference: (t: tf.Tensor) => tf.Tensor) =>
    tf.tidy(() => {
      assertClose(fast(x()).dataSync(), reference(x()).dataSync(), 1e-5, 1e-6);
      const loss = (f: typeof fast) => (t: tf.Tensor) => tf.sum(tf.mul(f(t), weights()));
      assertClose(tf.grad(loss(fast))(x()).dataSync(), tf.grad(loss(reference))(x()).dataSync(), 1e-5, 1e-5);
    });

  it('gelu (erf form)', () => {
    check(geluErf, (t) => tf.mul(tf.mul(t, 0.5), tf.add(1, tf.erf(tf.mul(t, Math.SQRT1_2)))));
  });

  it('gelu_new (tanh form)', () => {
    check(geluTanh, (t) =>
      tf.mul(
        tf.mul(t, 0.5),
        tf.add(1, tf.tanh(tf.mul(tf.add(t, tf.mul(tf.pow(t, 3), 0.044715)), Math.sqrt(2 / Math.PI)))),
      ),
    );
  });

  it('layer norm, including γ and β gradients', () => {
    tf.tidy(() => {
      const gamma = tf.randomNormal([8], 1, 0.1, 'float32', 3);
      const beta = tf.randomNormal([8], 0, 0.1, 'float32', 4);
      const reference = (t: tf.Tensor, g: tf.Tensor, b: tf.Tensor) => {
        const { mean, variance } = tf.moments(t, -1, true);
        return tf.add(tf.mul(tf.div(tf.sub(t, mean), tf.sqrt(tf.add(variance, 1e-5))), g), b);
      };
      const fast = (t: tf.Tensor, g: tf.Tensor, b: tf.Tensor) => layerNorm(t, g, b, 1e-5);
      const loss = (f: typeof fast) => (t: tf.Tensor, g: tf.Tensor, b: tf.Tensor) =>
        tf.sum(tf.mul(f(t, g, b), weights()));
      assertClose(fast(x(), gamma, beta).dataSync(), reference(x(), gamma, beta).dataSync(), 1e-5, 1e-5);
      const ours = tf.grads(loss(fast))([x(), gamma, beta]);
      const theirs = tf.grads(loss(reference))([x(), gamma, beta]);
      for (let i = 0; i < 3; i++) assertClose(ours[i].dataSync(), theirs[i].dataSync(), 1e-4, 1e-4);
    });
  });
});
