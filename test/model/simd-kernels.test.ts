import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import * as tf from '@tensorflow/tfjs';
import { batchedAttention, geluErf, layerNorm, multiHeadAttention } from '../../src/model/nn/functional.ts';
import { simdKernelsActive } from '../../src/model/simd/simd-kernels.ts';
import { ATTENTION, LAYER_NORM } from '../../src/model/simd/kernel-names.ts';
import { sumRows } from '../../src/model/simd/simd-ops.ts';
import { assertClose, wasmBackend } from './helpers.ts';

// lorafuse's SIMD kernels (wasm backend) against the textbook formulas through tfjs's own kernels.
describe('SIMD kernels on the wasm backend', () => {
  before(wasmBackend);

  it('are active on wasm', () => {
    assert.equal(tf.getBackend(), 'wasm');
    assert.equal(simdKernelsActive(), true);
  });

  it('check the inputs and attributes kernel-names.ts declares, naming the kernel and the missing one', () => {
    tf.tidy(() => {
      const x = tf.ones([2, 4]);
      const gamma = tf.ones([4]);
      assert.throws(
        () => tf.engine().runKernel(LAYER_NORM, { x, gamma }, { eps: 1e-5 }),
        /LorafuseLayerNorm: input beta is missing/,
      );
      assert.throws(
        () => tf.engine().runKernel(LAYER_NORM, { x, gamma, beta: gamma }, {}),
        /LorafuseLayerNorm: attribute eps must be a number/,
      );
      assert.throws(
        () => tf.engine().runKernel(ATTENTION, { q: x, k: x, v: x }, { batch: 1, tokens: 2, heads: 1 }),
        /LorafuseAttention: attribute scale must be a number/,
      );
    });
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

  const referenceLayerNorm = (t: tf.Tensor, g: tf.Tensor, b: tf.Tensor) => {
    const { mean, variance } = tf.moments(t, -1, true);
    return tf.add(tf.mul(tf.div(tf.sub(t, mean), tf.sqrt(tf.add(variance, 1e-6))), g), b);
  };

  it('layer norm and its x, γ and β gradients, over many rows of a wide and a narrow width', () => {
    for (const shape of [
      [3, 5, 768],
      [17, 4],
      [1, 64],
    ]) {
      tf.tidy(() => {
        const width = shape[shape.length - 1];
        const x = tf.randomNormal(shape, 0.5, 2, 'float32', 11);
        const gamma = tf.randomNormal([width], 1, 0.2, 'float32', 12);
        const beta = tf.randomNormal([width], 0, 0.2, 'float32', 13);
        const w = tf.randomNormal(shape, 0, 1, 'float32', 14);
        const ours = (t: tf.Tensor, g: tf.Tensor, b: tf.Tensor) => layerNorm(t, g, b, 1e-6);
        assertClose(
          ours(x, gamma, beta).dataSync(),
          referenceLayerNorm(x, gamma, beta).dataSync(),
          1e-5,
          1e-5,
        );
        const loss = (f: typeof ours) => (t: tf.Tensor, g: tf.Tensor, b: tf.Tensor) =>
          tf.sum(tf.mul(f(t, g, b), w));
        const a = tf.grads(loss(ours))([x, gamma, beta]);
        const e = tf.grads(loss(referenceLayerNorm))([x, gamma, beta]);
        for (let i = 0; i < 3; i++) assertClose(a[i].dataSync(), e[i].dataSync(), 1e-4, 1e-4);
      });
    }
  });

  it('layer norm: a gradient of its gradient fails loudly rather than coming out wrong', () => {
    assert.equal(simdKernelsActive(), true);
    tf.tidy(() => {
      const x = tf.randomNormal([2, 8], 0, 1, 'float32', 15);
      const [gamma, beta] = [tf.ones([8]), tf.zeros([8])];
      const inner = (u: tf.Tensor) =>
        tf.sum(tf.square(tf.grad((v: tf.Tensor) => tf.sum(tf.square(layerNorm(v, gamma, beta, 1e-5))))(u)));
      assert.throws(() => tf.grad(inner)(x), /gradient/i);
    });
  });

  it('attention and its q, k, v gradients on [B·T, hidden] rows, with and without a mask, against the tf-op path', () => {
    // [batch, tokens, heads, head size]: the bench ViT's 17 tokens (padded to 20 inside), one token, BERT-like heads.
    for (const [batch, tokens, heads, headDim] of [
      [3, 17, 4, 16],
      [2, 1, 2, 4],
      [2, 6, 2, 64],
    ]) {
      for (const masked of [false, true]) {
        tf.tidy(() => {
          const hidden = heads * headDim;
          const rows = (seed: number) => tf.randomNormal([batch * tokens, hidden], 0, 1, 'float32', seed);
          const keep = Array.from({ length: batch * tokens }, (_, i) =>
            i % tokens === tokens - 1 && i > 0 ? 0 : 1,
          );
          const mask = masked
            ? tf.reshape(tf.mul(tf.sub(1, tf.tensor1d(keep)), -1e9), [batch, 1, 1, tokens])
            : undefined;
          const w = rows(20);
          const loss = (f: typeof multiHeadAttention) => (q: tf.Tensor, k: tf.Tensor, v: tf.Tensor) =>
            tf.sum(tf.mul(f(q, k, v, heads, mask, tokens), w));
          const args = [rows(21), rows(22), rows(23)];
          const ours = multiHeadAttention(args[0], args[1], args[2], heads, mask, tokens);
          const theirs = batchedAttention(args[0], args[1], args[2], heads, mask, tokens);
          assert.deepEqual(ours.shape, [batch * tokens, hidden]);
          assertClose(ours.dataSync(), theirs.dataSync(), 1e-5, 1e-5);
          const a = tf.grads(loss(multiHeadAttention))(args);
          const e = tf.grads(loss(batchedAttention))(args);
          for (let i = 0; i < 3; i++) assertClose(a[i].dataSync(), e[i].dataSync(), 1e-4, 1e-5);
          // A masked key (with another key left to attend to) gets a probability of exactly 0, so its k and v gradients are exactly 0 (Adam would turn
          // any tiny leak into a full step).
          if (masked && tokens > 1) {
            const [dk, dv] = [a[1].arraySync() as number[][], a[2].arraySync() as number[][]];
            keep.forEach((kept, row) => {
              if (!kept)
                assert.ok(
                  [...dk[row], ...dv[row]].every((g) => g === 0),
                  `masked row ${row}`,
                );
            });
          }
        });
      }
    }
  });

  it('sums rows (a bias gradient) over every leading axis, and falls back for widths not a multiple of 4', () => {
    for (const shape of [
      [544, 64],
      [3, 5, 8],
      [1, 4],
      [7, 6],
    ]) {
      tf.tidy(() => {
        const x = tf.randomNormal(shape, 0, 1, 'float32', 30);
        const leading = shape.slice(0, -1).map((_, i) => i);
        assert.deepEqual(sumRows(x).shape, [shape[shape.length - 1]]);
        assertClose(sumRows(x).dataSync(), tf.sum(x, leading).dataSync(), 1e-5, 1e-5);
      });
    }
  });
});
