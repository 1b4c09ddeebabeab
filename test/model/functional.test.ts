import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import * as tf from '@tensorflow/tfjs';
import {
  affine,
  batchedAttention,
  geluErf,
  geluTanh,
  groupedAttention,
  layerNorm,
  multiHeadAttention,
} from '../../src/model/nn/functional.ts';
import { assertClose, onBackend, OP_BACKENDS } from './helpers.ts';

// The hand-written gradients against autograd through the textbook formulas (float32: rtol/atol 1e-5).
for (const backend of OP_BACKENDS) {
  describe(`hand-written gradients (${backend})`, () => {
    before(onBackend(backend));
    const x = () => tf.randomNormal([4, 6, 8], 0, 2, 'float32', 1);
    const weights = () => tf.randomNormal([4, 6, 8], 0, 1, 'float32', 2); // makes the loss non-trivial

    const check = (fast: (t: tf.Tensor) => tf.Tensor, reference: (t: tf.Tensor) => tf.Tensor) =>
      tf.tidy(() => {
        assertClose(fast(x()).dataSync(), reference(x()).dataSync(), 1e-5, 1e-6);
        const loss = (f: typeof fast) => (t: tf.Tensor) => tf.sum(tf.mul(f(t), weights()));
        assertClose(
          tf.grad(loss(fast))(x()).dataSync(),
          tf.grad(loss(reference))(x()).dataSync(),
          1e-5,
          1e-5,
        );
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
}

for (const backend of OP_BACKENDS) {
  describe(`attention gradient (${backend})`, () => {
    before(onBackend(backend));

    // multiHeadAttention picks groupedAttention on wasm and batchedAttention elsewhere: both are checked here.
    const implementations = { multiHeadAttention, batchedAttention, groupedAttention };
    for (const [name, attend] of Object.entries(implementations)) {
      it(`${name} matches autograd through the textbook formula, with and without a mask`, () => {
        tf.tidy(() => {
          const [batch, length, hidden, heads] = [2, 5, 12, 3];
          const input = (seed: number) => tf.randomNormal([batch, length, hidden], 0, 1, 'float32', seed);
          const mask = tf.reshape(
            tf.mul(
              tf.sub(
                1,
                tf.tensor2d([
                  [1, 1, 1, 1, 1],
                  [1, 1, 1, 0, 0],
                ]),
              ),
              -1e9,
            ),
            [batch, 1, 1, length],
          );
          const reference = (q: tf.Tensor, k: tf.Tensor, v: tf.Tensor, m?: tf.Tensor) => {
            const split = (x: tf.Tensor) =>
              tf.transpose(tf.reshape(x, [batch, length, heads, hidden / heads]), [0, 2, 1, 3]);
            let scores = tf.div(tf.matMul(split(q), split(k), false, true), Math.sqrt(hidden / heads));
            if (m) scores = tf.add(scores, m);
            const context = tf.matMul(tf.softmax(scores), split(v));
            return tf.reshape(tf.transpose(context, [0, 2, 1, 3]), [batch, length, hidden]);
          };
          const weights = input(9);
          for (const m of [undefined, mask]) {
            const fast = (q: tf.Tensor, k: tf.Tensor, v: tf.Tensor) => attend(q, k, v, heads, m);
            const slow = (q: tf.Tensor, k: tf.Tensor, v: tf.Tensor) => reference(q, k, v, m);
            const args = [input(1), input(2), input(3)];
            assertClose(
              fast(args[0], args[1], args[2]).dataSync(),
              slow(args[0], args[1], args[2]).dataSync(),
              1e-5,
              1e-6,
            );
            const loss = (f: typeof fast) => (q: tf.Tensor, k: tf.Tensor, v: tf.Tensor) =>
              tf.sum(tf.mul(f(q, k, v), weights));
            const ours = tf.grads(loss(fast))(args);
            const theirs = tf.grads(loss(slow))(args);
            for (let i = 0; i < 3; i++) assertClose(ours[i].dataSync(), theirs[i].dataSync(), 1e-4, 1e-5);
          }
        });
      });

      it(`${name} on 2-D [B·T, hidden] rows gives the 3-D result and gradients, in the rows' shape`, () => {
        tf.tidy(() => {
          const [batch, length, hidden, heads] = [2, 5, 12, 3];
          const args = [1, 2, 3].map((seed) =>
            tf.randomNormal([batch, length, hidden], 0, 1, 'float32', seed),
          );
          const rows = args.map((a) => tf.reshape(a, [batch * length, hidden]));
          const weights = tf.randomNormal([batch, length, hidden], 0, 1, 'float32', 9);
          const flat = attend(rows[0], rows[1], rows[2], heads, undefined, length);
          assert.deepStrictEqual(flat.shape, [batch * length, hidden]);
          assertClose(flat.dataSync(), attend(args[0], args[1], args[2], heads).dataSync(), 1e-6, 1e-7);
          const loss = (shape: number[]) => (q: tf.Tensor, k: tf.Tensor, v: tf.Tensor) =>
            tf.sum(
              tf.mul(
                tf.reshape(
                  attend(q, k, v, heads, undefined, shape.length === 2 ? length : undefined),
                  weights.shape,
                ),
                weights,
              ),
            );
          const ours = tf.grads(loss([batch * length, hidden]))(rows);
          const theirs = tf.grads(loss([batch, length, hidden]))(args);
          for (let i = 0; i < 3; i++) {
            assert.deepStrictEqual(ours[i].shape, [batch * length, hidden]);
            assertClose(ours[i].dataSync(), theirs[i].dataSync(), 1e-6, 1e-7);
          }
        });
      });
    }
  });
}

for (const backend of OP_BACKENDS) {
  describe(`affine (${backend})`, () => {
    before(onBackend(backend));

    it('matches x·W + b and its autograd gradients for trainable weights, and gives frozen ones zeros', () => {
      tf.tidy(() => {
        const x = tf.randomNormal([6, 5], 0, 1, 'float32', 1) as tf.Tensor2D;
        const w = tf.variable(tf.randomNormal([5, 3], 0, 1, 'float32', 2) as tf.Tensor2D);
        const b = tf.variable(tf.randomNormal([3], 0, 1, 'float32', 3));
        const weights = tf.randomNormal([6, 3], 0, 1, 'float32', 4);
        assertClose(affine(x, w, b).dataSync(), tf.add(tf.matMul(x, w), b).dataSync(), 1e-6, 1e-6);
        const ours = tf.variableGrads(() => tf.sum(tf.mul(affine(x, w, b), weights)) as tf.Scalar, [w, b]);
        const theirs = tf.variableGrads(
          () => tf.sum(tf.mul(tf.add(tf.matMul(x, w), b), weights)) as tf.Scalar,
          [w, b],
        );
        for (const name of [w.name, b.name]) {
          assertClose(ours.grads[name].dataSync(), theirs.grads[name].dataSync(), 1e-5, 1e-6);
        }
        const frozenW = tf.randomNormal([5, 3], 0, 1, 'float32', 2) as tf.Tensor2D;
        const frozenB = tf.randomNormal([3], 0, 1, 'float32', 3);
        const [dx, dW, dB] = tf.grads((input: tf.Tensor, kernel: tf.Tensor, bias: tf.Tensor) =>
          tf.sum(tf.mul(affine(input as tf.Tensor2D, kernel as tf.Tensor2D, bias), weights)),
        )([x, frozenW, frozenB]);
        assertClose(dx.dataSync(), tf.matMul(weights, frozenW, false, true).dataSync(), 1e-5, 1e-6);
        assert.deepStrictEqual([...dW.dataSync(), ...dB.dataSync()], new Array(18).fill(0));
        w.dispose();
        b.dispose();
      });
    });
  });
}
