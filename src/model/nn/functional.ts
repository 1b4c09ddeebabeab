// The layers the architectures share (GELU, layer norm, attention, affine), on the SIMD kernels where they fit,
// else tf ops.
import { ModelInputError } from '../errors.ts';
import * as tf from '@tensorflow/tfjs';
import { matMulTransposed, transposeLast2 } from '../fast-gradients.ts';
import { constant } from './constants.ts';
import { normalCdf, normalDensity } from './normal-cdf.ts';
import { simdKernelsActive } from '../simd/simd-kernels.ts';
import {
  simdAttention,
  simdAttentionFits,
  simdGeluErf,
  simdLayerNorm,
  simdLayerNormFits,
  sumRows,
} from '../simd/simd-ops.ts';

/** Hugging Face activation names: gelu is the erf form, gelu_new / gelu_pytorch_tanh the tanh form. */
export function activation(name: string, x: tf.Tensor): tf.Tensor {
  switch (name) {
    case 'gelu':
      return geluErf(x);
    case 'gelu_new':
    case 'gelu_pytorch_tanh':
    case 'gelu_fast':
      return geluTanh(x);
    case 'quick_gelu':
      return tf.mul(x, tf.sigmoid(tf.mul(x, constant(1.702))));
    case 'relu':
      return tf.relu(x);
    case 'tanh':
      return tf.tanh(x);
    case 'silu':
    case 'swish':
      return tf.mul(x, tf.sigmoid(x));
    default:
      throw new ModelInputError(`activation ${name} is not supported`);
  }
}

const SQRT_2_OVER_PI = Math.sqrt(2 / Math.PI);

/**
 * x·Φ(x) with a hand-written gradient Φ(x) + x·φ(x): autograd through 0.5·x·(1 + erf(x/√2)) costs about twice the
 * kernels on wasm. The gradient is built from differentiable ops, so higher-order gradients still work.
 */
export function geluErf(x: tf.Tensor): tf.Tensor {
  if (simdKernelsActive() && x.dtype === 'float32') return simdGeluErf(x);
  const gelu = tf.customGrad((...args: Array<tf.Tensor | tf.GradSaveFunc>) => {
    const input = args[0] as tf.Tensor;
    const cdf = normalCdf(input);
    (args[1] as tf.GradSaveFunc)([input, cdf]);
    return {
      value: tf.mul(input, cdf),
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
        const [xs, phi] = saved;
        return [tf.mul(dy, tf.add(phi, tf.mul(xs, normalDensity(xs))))];
      },
    };
  });
  return gelu(x);
}

/**
 * 0.5·x·(1 + tanh(√(2/π)(x + 0.044715x³))) computed as x·σ(2·inner), the same function (0.5(1 + tanh z) = σ(2z)):
 * wasm's Sigmoid is vectorised, its Tanh is scalar libm code. x·x·x: tf.pow is slow on wasm.
 */
export function geluTanh(x: tf.Tensor): tf.Tensor {
  const gelu = tf.customGrad((...args: Array<tf.Tensor | tf.GradSaveFunc>) => {
    const input = args[0] as tf.Tensor;
    const square = tf.mul(input, input);
    const inner = tf.mul(
      tf.mul(input, tf.add(tf.mul(square, constant(0.044715)), constant(1))),
      constant(2 * SQRT_2_OVER_PI),
    );
    const gate = tf.sigmoid(inner);
    (args[1] as tf.GradSaveFunc)([input, gate]);
    return {
      value: tf.mul(input, gate),
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
        const [xs, s] = saved;
        // d/dx x·σ(g(x)) = σ + x·σ(1 − σ)·g'(x), g'(x) = 2√(2/π)(1 + 3·0.044715x²)
        const dInner = tf.mul(
          tf.add(tf.mul(tf.mul(xs, xs), constant(3 * 0.044715)), constant(1)),
          constant(2 * SQRT_2_OVER_PI),
        );
        const grad = tf.add(s, tf.mul(tf.mul(tf.mul(xs, s), tf.sub(constant(1), s)), dInner));
        return [tf.mul(dy, grad)];
      },
    };
  });
  return gelu(x);
}

/**
 * x·W + b as one fused matMul (wasm/XNNPACK adds the bias inside the GEMM: no separate Add pass, no Add gradient),
 * with flag-free matMuls in the gradient: dx = dy·Wᵀ, dW = xᵀ·dy, db = Σ dy. customGrad asks for every input's
 * gradient, so a weight that is not a tf.Variable (frozen: LoRA and L-LoRA keep the base weights as plain tensors)
 * gets zeros instead of the xᵀ·dy product nobody reads (a frozen bias likewise skips its Σ dy). `weightOutIn` gives
 * the weight already in [out, in] layout (a frozen weight's cached copy, made on the first backward pass, so
 * inference never makes it) and saves the transpose in dx = dy·Wᵀ.
 */
export function affine(
  x: tf.Tensor2D,
  weight: tf.Tensor2D,
  bias: tf.Tensor,
  weightOutIn?: () => tf.Tensor2D | undefined,
): tf.Tensor2D {
  const weightTrainable = weight instanceof tf.Variable;
  const biasTrainable = bias instanceof tf.Variable;
  const op = tf.customGrad((...args: Array<tf.Tensor | tf.GradSaveFunc>) => {
    const [input, w, b] = args as tf.Tensor2D[];
    (args[3] as tf.GradSaveFunc)([input, w]);
    return {
      value: tf.fused.matMul({ a: input, b: w, bias: b }),
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
        const [xs, ws] = saved;
        const dW = weightTrainable ? matMulTransposed(xs, dy, true, false) : tf.zerosLike(ws);
        const dB = biasTrainable ? tf.reshape(sumRows(dy), b.shape) : tf.zerosLike(b);
        const outIn = weightOutIn?.();
        return [outIn ? tf.matMul(dy, outIn) : matMulTransposed(dy, ws, false, true), dW, dB];
      },
    };
  });
  return op(x, weight, bias) as tf.Tensor2D;
}

/**
 * Layer norm over the last axis, PyTorch semantics (biased variance, eps inside the square root), with the
 * closed-form gradient dx = (ĝ − mean(ĝ) − x̂·mean(ĝ·x̂))/σ where ĝ = γ·dy: far fewer kernels than autograd.
 */
export function layerNorm(x: tf.Tensor, gamma: tf.Tensor, beta: tf.Tensor, eps: number): tf.Tensor {
  if (simdLayerNormFits(x, gamma, beta)) return simdLayerNorm(x, gamma, beta, eps);
  const norm = tf.customGrad((...args: Array<tf.Tensor | tf.GradSaveFunc>) => {
    const [input, g, b] = args as tf.Tensor[];
    const mean = tf.mean(input, -1, true);
    const centered = tf.sub(input, mean);
    const invStd = tf.rsqrt(tf.add(tf.mean(tf.mul(centered, centered), -1, true), constant(eps)));
    const normalized = tf.mul(centered, invStd);
    (args[3] as tf.GradSaveFunc)([normalized, invStd, g]);
    return {
      value: tf.add(tf.mul(normalized, g), b),
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
        const [xHat, inv, gain] = saved;
        const leading = dy.shape.slice(0, -1).map((_, i) => i);
        const gHat = tf.mul(dy, gain);
        const dx = tf.mul(
          tf.sub(tf.sub(gHat, tf.mean(gHat, -1, true)), tf.mul(xHat, tf.mean(tf.mul(gHat, xHat), -1, true))),
          inv,
        );
        return [dx, tf.sum(tf.mul(dy, xHat), leading), tf.sum(dy, leading)];
      },
    };
  });
  return norm(x, gamma, beta);
}

/**
 * Row lookup with a gradient that wasm can run (tf.gather's needs UnsortedSegmentSum, which wasm lacks):
 * d table = one_hot(ids)ᵀ · dy.
 */
export function embeddingLookup(table: tf.Tensor2D, ids: tf.Tensor1D): tf.Tensor2D {
  const lookup = tf.customGrad((...args: Array<tf.Tensor | tf.GradSaveFunc>) => {
    const value = tf.gather(args[0] as tf.Tensor, ids);
    (args[1] as tf.GradSaveFunc)([ids]); // kept alive for the backward pass, which runs after the forward scope
    const gradFunc = (dy: tf.Tensor, saved: tf.Tensor[]) => {
      const oneHot = tf.oneHot(saved[0] as tf.Tensor1D, table.shape[0]).toFloat();
      return matMulTransposed(oneHot, dy, true, false);
    };
    return { value, gradFunc };
  });
  return lookup(table) as tf.Tensor2D;
}

/** [batch, length, hidden] of attention inputs [B, T, hidden], or [B·T, hidden] rows of `sequenceLength` tokens. */
function attentionDims(q: tf.Tensor, sequenceLength?: number): [number, number, number] {
  if (q.rank === 3) return q.shape as [number, number, number];
  if (q.rank !== 2 || !sequenceLength) throw new Error('2-D attention inputs need their sequence length');
  const [rows, hidden] = q.shape as [number, number];
  return [rows / sequenceLength, sequenceLength, hidden];
}

/**
 * Multi-head scaled dot-product attention on [B, T, hidden] projections, or on [B·T, hidden] rows when
 * `sequenceLength` is given (the output has the inputs' shape); `additiveMask` is [B, 1, 1, T]
 * (0 to keep, a large negative to drop). The gradient is written out (dS = P∘(dP − rowsum(dP∘P))): it saves four
 * tensors where autograd saves one per op. On wasm the per-head products run as depthwise convolutions
 * (XNNPACK), about 2× faster than wasm's naive batched matMul kernel.
 */
export function multiHeadAttention(
  q: tf.Tensor,
  k: tf.Tensor,
  v: tf.Tensor,
  numHeads: number,
  additiveMask?: tf.Tensor,
  sequenceLength?: number,
): tf.Tensor {
  if (simdAttentionFits(q, k, v, numHeads)) {
    const [batch, length] = attentionDims(q, sequenceLength);
    return simdAttention(q, k, v, numHeads, batch, length, additiveMask);
  }
  return tf.getBackend() === 'wasm'
    ? groupedAttention(q, k, v, numHeads, additiveMask, sequenceLength)
    : batchedAttention(q, k, v, numHeads, additiveMask, sequenceLength);
}

/** Attention with batched matMuls over [B, H, T, d] heads, kᵀ as an explicit transpose. */
export function batchedAttention(
  q: tf.Tensor,
  k: tf.Tensor,
  v: tf.Tensor,
  numHeads: number,
  additiveMask?: tf.Tensor,
  sequenceLength?: number,
): tf.Tensor {
  const [batch, length, hidden] = attentionDims(q, sequenceLength);
  const headDim = hidden / numHeads;
  const scale = 1 / Math.sqrt(headDim);
  const split = (x: tf.Tensor) =>
    tf.transpose(tf.reshape(x, [batch, length, numHeads, headDim]), [0, 2, 1, 3]);
  const merge = (x: tf.Tensor) => tf.reshape(tf.transpose(x, [0, 2, 1, 3]), q.shape);
  const attention = tf.customGrad((...args: Array<tf.Tensor | tf.GradSaveFunc>) => {
    const [qh, kh, vh] = (args.slice(0, 3) as tf.Tensor[]).map(split);
    let scores = tf.mul(tf.matMul(qh, transposeLast2(kh)), constant(scale));
    if (additiveMask) scores = tf.add(scores, additiveMask);
    const probs = tf.softmax(scores);
    (args[3] as tf.GradSaveFunc)([qh, kh, vh, probs]);
    return {
      value: merge(tf.matMul(probs, vh)),
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
        const [sq, sk, sv, p] = saved;
        const dContext = split(dy);
        const dProbs = tf.matMul(dContext, transposeLast2(sv));
        const dV = tf.matMul(transposeLast2(p), dContext);
        const dScores = tf.mul(
          tf.mul(p, tf.sub(dProbs, tf.sum(tf.mul(dProbs, p), -1, true))),
          constant(scale),
        );
        const dQ = tf.matMul(dScores, sk);
        const dK = tf.matMul(transposeLast2(dScores), sq);
        return [merge(dQ), merge(dK), merge(dV)];
      },
    };
  });
  return attention(q, k, v);
}

/**
 * C[g] = A[g]·B[g] for G groups with a [M, K, G] and b [K, G, N], giving [M, G, N]: a depthwise convolution whose
 * kernel spans the whole K-wide input row, with channel multiplier N. XNNPACK runs it as a grouped GEMM.
 */
export function groupedMatMul(a: tf.Tensor, b: tf.Tensor): tf.Tensor {
  const [m, inner, groups] = a.shape as [number, number, number];
  const n = b.shape[2] as number;
  const input = tf.reshape(a, [m, 1, inner, groups]) as tf.Tensor4D;
  const kernel = tf.reshape(b, [1, inner, groups, n]) as tf.Tensor4D;
  return tf.reshape(tf.depthwiseConv2d(input, kernel, 1, 'valid'), [m, groups, n]);
}

/**
 * Attention with the heads as groups G = B·H in a token-major layout: scores and probabilities are [T, G, T]
 * (softmax over the last axis), every product a groupedMatMul; transposes move between [B, T, H, d] and the
 * layouts each product wants. Gradients: dP = dC·vᵀ, dV = Pᵀ·dC, dQ = dS·k, dK = dSᵀ·q.
 */
export function groupedAttention(
  q: tf.Tensor,
  k: tf.Tensor,
  v: tf.Tensor,
  numHeads: number,
  additiveMask?: tf.Tensor,
  sequenceLength?: number,
): tf.Tensor {
  const [batch, length, hidden] = attentionDims(q, sequenceLength);
  const headDim = hidden / numHeads;
  const scale = 1 / Math.sqrt(headDim);
  const heads = (x: tf.Tensor) => tf.reshape(x, [batch, length, numHeads, headDim]);
  const groups = batch * numHeads;
  // [B, T, H, d] → [T, d, G] (a product's left operand: rows, inner, groups)
  const rowsInner = (x: tf.Tensor) =>
    tf.reshape(tf.transpose(heads(x), [1, 3, 0, 2]), [length, headDim, groups]);
  // [B, T, H, d] → [d, G, T] (kᵀ or vᵀ as a right operand: inner, groups, columns)
  const innerCols = (x: tf.Tensor) =>
    tf.reshape(tf.transpose(heads(x), [3, 0, 2, 1]), [headDim, groups, length]);
  // [B, T, H, d] ↔ [T, G, d] (a right operand with T as the inner axis, and every product's output)
  const tokenMajor = (x: tf.Tensor) =>
    tf.reshape(tf.transpose(heads(x), [1, 0, 2, 3]), [length, groups, headDim]);
  const batchMajor = (x: tf.Tensor) =>
    tf.reshape(tf.transpose(tf.reshape(x, [length, batch, numHeads, headDim]), [1, 0, 2, 3]), q.shape);
  const mask = additiveMask ? tf.reshape(additiveMask, [1, batch, 1, length]) : null;
  const attention = tf.customGrad((...args: Array<tf.Tensor | tf.GradSaveFunc>) => {
    const [query, key, value] = args.slice(0, 3) as tf.Tensor[];
    let scores = tf.mul(groupedMatMul(rowsInner(query), innerCols(key)), constant(scale)); // [T, G, T]
    if (mask)
      scores = tf.reshape(tf.add(tf.reshape(scores, [length, batch, numHeads, length]), mask), scores.shape);
    const probs = tf.softmax(scores);
    (args[3] as tf.GradSaveFunc)([query, key, value, probs]);
    const context = groupedMatMul(tf.transpose(probs, [0, 2, 1]), tokenMajor(value)); // [T, G, d]
    return {
      value: batchMajor(context),
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
        const [sq, sk, sv, p] = saved;
        const dProbs = groupedMatMul(rowsInner(dy), innerCols(sv)); // [T, G, T]
        const dV = groupedMatMul(tf.transpose(p, [2, 0, 1]), tokenMajor(dy));
        const dScores = tf.mul(
          tf.mul(p, tf.sub(dProbs, tf.sum(tf.mul(dProbs, p), -1, true))),
          constant(scale),
        );
        const dQ = groupedMatMul(tf.transpose(dScores, [0, 2, 1]), tokenMajor(sk));
        const dK = groupedMatMul(tf.transpose(dScores, [2, 0, 1]), tokenMajor(sq));
        return [batchMajor(dQ), batchMajor(dK), batchMajor(dV)];
      },
    };
  });
  return attention(q, k, v);
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
