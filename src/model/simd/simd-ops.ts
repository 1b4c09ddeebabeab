// The ops that run lorafuse's SIMD kernels (registered by simd-kernels.ts) with their inputs and attributes typed as
// kernel-names.ts declares them: custom gradients whose backward passes are kernels too, and checks of which
// operands a kernel can take (callers fall back to tf ops otherwise).
import * as tf from '@tensorflow/tfjs';
import {
  ADAMW,
  type AdamWAttrs,
  type AdamWInputs,
  ATTENTION,
  ATTENTION_GRAD,
  type AttentionAttrs,
  type AttentionGradInputs,
  type AttentionInputs,
  COLUMN_SUM,
  type ColumnSumInputs,
  GELU_ERF,
  GELU_ERF_GRAD,
  type GeluErfGradInputs,
  type GeluErfInputs,
  LAYER_NORM,
  LAYER_NORM_GRAD,
  type LayerNormAttrs,
  type LayerNormGradInputs,
  type LayerNormInputs,
} from './kernel-names.ts';
import { kernelExports, simdKernelsActive } from './simd-kernels.ts';
import { offset, wasmBackend } from './wasm-heap.ts';

/** A kernel's declared inputs as the tensors an op passes (optional ones may be left out). */
type TensorsOf<I> = { [K in keyof I]: undefined extends I[K] ? tf.Tensor | undefined : tf.Tensor };

/** tf.engine().runKernel with the inputs and attributes kernel-names.ts declares for the kernel. */
function runKernel<I, A extends tf.NamedAttrMap = tf.NamedAttrMap>(
  kernel: string,
  inputs: TensorsOf<I>,
  attrs?: A,
): tf.Tensor | tf.Tensor[] {
  const named: tf.NamedTensorMap = {};
  for (const [name, tensor] of Object.entries<tf.Tensor | undefined>(inputs))
    if (tensor) named[name] = tensor;
  return tf.engine().runKernel(kernel, named, attrs);
}

/**
 * x·Φ(x) by the SIMD kernel (only while simdKernelsActive()). The forward pass keeps Φ(x), so the backward pass
 * computes only the density: dy·(Φ + x·φ).
 */
export function simdGeluErf(x: tf.Tensor): tf.Tensor {
  const gelu = tf.customGrad((...args: Array<tf.Tensor | tf.GradSaveFunc>) => {
    const input = args[0] as tf.Tensor;
    const [value, cdf] = runKernel<GeluErfInputs>(GELU_ERF, { x: input }) as tf.Tensor[];
    (args[1] as tf.GradSaveFunc)([input, cdf]);
    return {
      value,
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) =>
        runKernel<GeluErfGradInputs>(GELU_ERF_GRAD, { x: saved[0], cdf: saved[1], dy }) as tf.Tensor,
    };
  });
  return gelu(x);
}

/** Whether simdLayerNorm can take these operands: float32 rows whose width is a multiple of 4. */
export function simdLayerNormFits(x: tf.Tensor, gamma: tf.Tensor, beta: tf.Tensor): boolean {
  const width = x.shape[x.shape.length - 1];
  return (
    simdKernelsActive() &&
    width % 4 === 0 &&
    [x, gamma, beta].every((t) => t.dtype === 'float32') &&
    gamma.size === width &&
    beta.size === width
  );
}

/**
 * Layer norm over the last axis by the SIMD kernels, as a custom gradient: the backward pass is one kernel too.
 * First-order only: a gradient of this gradient fails loudly (LorafuseLayerNormGrad has no gradient).
 */
export function simdLayerNorm(x: tf.Tensor, gamma: tf.Tensor, beta: tf.Tensor, eps: number): tf.Tensor {
  const norm = tf.customGrad((...args: Array<tf.Tensor | tf.GradSaveFunc>) => {
    const [input, g, b] = args as tf.Tensor[];
    const [out, xhat, invStd] = runKernel<LayerNormInputs, LayerNormAttrs>(
      LAYER_NORM,
      { x: input, gamma: g, beta: b },
      { eps },
    ) as tf.Tensor[];
    (args[3] as tf.GradSaveFunc)([xhat, invStd, g]);
    return {
      value: out,
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
        const [xh, inv, gain] = saved;
        const [dx, dgamma, dbeta] = runKernel<LayerNormGradInputs>(LAYER_NORM_GRAD, {
          dy,
          xhat: xh,
          invStd: inv,
          gamma: gain,
        }) as tf.Tensor[];
        return [dx, tf.reshape(dgamma, gain.shape), tf.reshape(dbeta, b.shape)];
      },
    };
  });
  return norm(x, gamma, beta);
}

/** Whether simdAttention can take these projections: float32, a head size that is a multiple of 4. */
export function simdAttentionFits(q: tf.Tensor, k: tf.Tensor, v: tf.Tensor, heads: number): boolean {
  const hidden = q.shape[q.shape.length - 1];
  return (
    simdKernelsActive() &&
    hidden % heads === 0 &&
    (hidden / heads) % 4 === 0 &&
    [q, k, v].every((t) => t.dtype === 'float32' && t.size === q.size)
  );
}

/**
 * Multi-head attention on projections laid out as [B·T, hidden] rows (or [B, T, hidden]) by the SIMD kernels;
 * `additiveMask` has B·T floats (0 to keep a key, a large negative to drop it). A custom gradient whose backward
 * pass is one kernel; first-order only, like simdLayerNorm.
 */
export function simdAttention(
  q: tf.Tensor,
  k: tf.Tensor,
  v: tf.Tensor,
  heads: number,
  batch: number,
  tokens: number,
  additiveMask?: tf.Tensor,
): tf.Tensor {
  const hidden = q.shape[q.shape.length - 1];
  const attrs: AttentionAttrs = { batch, tokens, heads, scale: 1 / Math.sqrt(hidden / heads) };
  const mask = additiveMask ? tf.reshape(additiveMask, [batch * tokens]) : undefined;
  const attention = tf.customGrad((...args: Array<tf.Tensor | tf.GradSaveFunc>) => {
    const [query, key, value] = args as tf.Tensor[];
    const [context, probs] = runKernel<AttentionInputs, AttentionAttrs>(
      ATTENTION,
      { q: query, k: key, v: value, mask },
      attrs,
    ) as tf.Tensor[];
    (args[3] as tf.GradSaveFunc)([query, key, value, probs]);
    return {
      value: context,
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
        const [sq, sk, sv, p] = saved;
        return runKernel<AttentionGradInputs, AttentionAttrs>(
          ATTENTION_GRAD,
          { dy, q: sq, k: sk, v: sv, probs: p },
          attrs,
        ) as tf.Tensor[];
      },
    };
  });
  return attention(q, k, v);
}

/**
 * Σ over every axis but the last (a bias gradient) as one SIMD pass; tfjs's Sum reduces inner axes only, so for
 * rows it transposes first. Falls back to tf.sum off wasm or for a width that is not a multiple of 4.
 */
export function sumRows(x: tf.Tensor): tf.Tensor1D {
  const width = x.shape[x.shape.length - 1];
  if (!simdKernelsActive() || width % 4 !== 0 || x.dtype !== 'float32') {
    return tf.sum(
      x,
      x.shape.slice(0, -1).map((_, i) => i),
    ) as tf.Tensor1D;
  }
  return runKernel<ColumnSumInputs>(COLUMN_SUM, { x }) as tf.Tensor1D;
}

/** Σ x² of a float32 tensor on the wasm backend, accumulated in float64, read straight from its memory. */
export function simdSumSquares(x: tf.Tensor): number {
  return kernelExports().sum_squares(offset(wasmBackend(tf.backend()), x), x.size);
}

/** The scalars of one AdamW step (kernel-names.ts's AdamWAttrs). */
export type AdamWStep = AdamWAttrs;

/** One AdamW step of a tensor as one SIMD pass: the new parameter, first and second moments. */
export function simdAdamW(
  p: tf.Tensor,
  g: tf.Tensor,
  m: tf.Tensor,
  v: tf.Tensor,
  step: AdamWStep,
): tf.Tensor[] {
  return runKernel<AdamWInputs, AdamWAttrs>(ADAMW, { p, g, m, v }, step) as tf.Tensor[];
}
