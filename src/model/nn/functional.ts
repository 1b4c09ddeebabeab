import * as tf from '@tensorflow/tfjs';
import { transposeLast2 } from '../fast-gradients.ts';

/** Hugging Face activation names: gelu is the erf form, gelu_new / gelu_pytorch_tanh the tanh form. */
export function activation(name: string, x: tf.Tensor): tf.Tensor {
  switch (name) {
    case 'gelu':
      return tf.mul(tf.mul(x, 0.5), tf.add(1, tf.erf(tf.mul(x, Math.SQRT1_2))));
    case 'gelu_new':
    case 'gelu_pytorch_tanh':
    case 'gelu_fast': {
      // x*x*x rather than tf.pow: pow is slow on wasm and its gradient costs a log.
      const cubic = tf.mul(tf.mul(tf.mul(x, x), x), 0.044715);
      const inner = tf.mul(tf.add(x, cubic), Math.sqrt(2 / Math.PI));
      return tf.mul(tf.mul(x, 0.5), tf.add(1, tf.tanh(inner)));
    }
    case 'quick_gelu':
      return tf.mul(x, tf.sigmoid(tf.mul(x, 1.702)));
    case 'relu':
      return tf.relu(x);
    case 'tanh':
      return tf.tanh(x);
    case 'silu':
    case 'swish':
      return tf.mul(x, tf.sigmoid(x));
    default:
      throw new Error(`activation ${name} is not supported`);
  }
}

/** Layer norm over the last axis, PyTorch semantics (biased variance, eps inside the square root). */
export function layerNorm(x: tf.Tensor, gamma: tf.Tensor, beta: tf.Tensor, eps: number): tf.Tensor {
  const mean = tf.mean(x, -1, true);
  const centered = tf.sub(x, mean);
  const variance = tf.mean(tf.mul(centered, centered), -1, true);
  return tf.add(tf.mul(tf.mul(centered, tf.rsqrt(tf.add(variance, eps))), gamma), beta);
}

/**
 * Row lookup with a gradient that wasm can run (tf.gather's needs UnsortedSegmentSum, which wasm lacks):
 * d table = one_hot(ids)ᵀ · dy.
 */
export function embeddingLookup(table: tf.Tensor2D, ids: tf.Tensor1D): tf.Tensor2D {
  const lookup = tf.customGrad((...args: Array<tf.Tensor | tf.GradSaveFunc>) => {
    const value = tf.gather(args[0] as tf.Tensor, ids);
    const gradFunc = (dy: tf.Tensor) => {
      const oneHot = tf.oneHot(ids, table.shape[0]).toFloat();
      return tf.matMul(transposeLast2(oneHot), dy);
    };
    return { value, gradFunc };
  });
  return lookup(table) as tf.Tensor2D;
}

/**
 * Multi-head scaled dot-product attention on [B, T, hidden] projections; `additiveMask` is [B, 1, 1, T]
 * (0 to keep, a large negative to drop). kᵀ is an explicit transpose: fast on wasm.
 */
export function multiHeadAttention(
  q: tf.Tensor,
  k: tf.Tensor,
  v: tf.Tensor,
  numHeads: number,
  additiveMask?: tf.Tensor,
): tf.Tensor {
  const [batch, length, hidden] = q.shape;
  const headDim = hidden / numHeads;
  const split = (x: tf.Tensor) =>
    tf.transpose(tf.reshape(x, [batch, length, numHeads, headDim]), [0, 2, 1, 3]);
  const qh = split(q);
  const kh = split(k);
  const vh = split(v);
  let scores = tf.mul(tf.matMul(qh, transposeLast2(kh)), 1 / Math.sqrt(headDim));
  if (additiveMask) scores = tf.add(scores, additiveMask);
  const context = tf.matMul(tf.softmax(scores), vh);
  return tf.reshape(tf.transpose(context, [0, 2, 1, 3]), [batch, length, hidden]);
}

/** Image → non-overlapping patches [B, P, C·p·p] in the order of a Conv2d kernel [out, C, p, p] flattened. */
export function toPatches(pixels: tf.Tensor4D, patchSize: number): tf.Tensor3D {
  const [batch, channels, height, width] = pixels.shape;
  const rows = Math.floor(height / patchSize);
  const cols = Math.floor(width / patchSize);
  let x: tf.Tensor = pixels;
  if (rows * patchSize !== height || cols * patchSize !== width) {
    x = tf.slice(pixels, [0, 0, 0, 0], [batch, channels, rows * patchSize, cols * patchSize]);
  }
  const grid = tf.reshape(x, [batch * channels, rows, patchSize, cols, patchSize]);
  const ordered = tf.transpose(grid, [0, 1, 3, 2, 4]); // [B·C, rows, cols, p, p]
  const perImage = tf.reshape(ordered, [batch, channels, rows * cols, patchSize * patchSize]);
  return tf.reshape(tf.transpose(perImage, [0, 2, 1, 3]), [
    batch,
    rows * cols,
    channels * patchSize * patchSize,
  ]);
}

/** Mean cross-entropy of integer labels against logits [N, C]. */
export function crossEntropy(logits: tf.Tensor2D, labels: tf.Tensor1D): tf.Scalar {
  const logProbs = tf.logSoftmax(logits);
  const picked = tf.sum(tf.mul(logProbs, tf.oneHot(labels, logits.shape[1])), -1);
  return tf.neg(tf.mean(picked)) as tf.Scalar;
}
