// lorafuse's own SIMD kernels on the wasm backend, registered as tfjs kernels (so tidy, disposal, profiling and
// autograd treat them like any other). The module is assembled from text by wabt at start-up (a few ms; nothing
// generated is committed) and instantiated on the backend's own WebAssembly.Memory.
import * as tf from '@tensorflow/tfjs';
import wabtInit from 'wabt';
import { normalDensity } from '../nn/normal-cdf.ts';
import { constant } from '../nn/constants.ts';
import { KERNELS_WAT } from './kernels-wat.ts';
import { type MatMulExports, overrideMatMulKernels } from './matmul-kernel.ts';
import { type WasmBackend, offset, size, withScratch } from './wasm-heap.ts';

// The WebAssembly global as used here (tsconfig's libs carry no WebAssembly types without the DOM's).
declare const WebAssembly: {
  Memory: abstract new (...args: never[]) => object;
  instantiate(binary: Uint8Array, imports: object): Promise<{ instance: { exports: object } }>;
};

/** The exports of the kernel module: every argument is a byte offset into the backend's heap, or a count. */
interface KernelExports extends MatMulExports {
  gelu_erf(x: number, out: number, cdf: number, n: number): void;
  gelu_erf_grad(x: number, cdf: number, dy: number, out: number, n: number): void;
  column_sum(x: number, out: number, rows: number, width: number): void;
  sum_squares(x: number, n: number): number;
  adamw(
    p: number,
    g: number,
    m: number,
    v: number,
    pOut: number,
    mOut: number,
    vOut: number,
    n: number,
    stepSize: number,
    beta1: number,
    oneMinusBeta1: number,
    beta2: number,
    oneMinusBeta2: number,
    eps: number,
    decay: number,
    invSqrtCorrection2: number,
    gradScale: number,
  ): void;
  layer_norm(
    x: number,
    gamma: number,
    beta: number,
    out: number,
    xhat: number,
    invStd: number,
    rows: number,
    width: number,
    eps: number,
  ): void;
  layer_norm_grad(
    dy: number,
    xhat: number,
    invStd: number,
    gamma: number,
    dx: number,
    dgamma: number,
    dbeta: number,
    rows: number,
    width: number,
  ): void;
  attention(
    q: number,
    k: number,
    v: number,
    mask: number,
    context: number,
    probs: number,
    scratch: number,
    batch: number,
    tokens: number,
    heads: number,
    headDim: number,
    scale: number,
  ): void;
  attention_grad(
    dContext: number,
    q: number,
    k: number,
    v: number,
    probs: number,
    dq: number,
    dk: number,
    dv: number,
    scratch: number,
    batch: number,
    tokens: number,
    heads: number,
    headDim: number,
    scale: number,
  ): void;
}

export const GELU_ERF = 'LorafuseGeluErf';
export const GELU_ERF_GRAD = 'LorafuseGeluErfGrad';
export const COLUMN_SUM = 'LorafuseColumnSum';
export const ADAMW = 'LorafuseAdamW';
export const LAYER_NORM = 'LorafuseLayerNorm';
export const LAYER_NORM_GRAD = 'LorafuseLayerNormGrad';
export const ATTENTION = 'LorafuseAttention';
export const ATTENTION_GRAD = 'LorafuseAttentionGrad';

let kernels: KernelExports | null = null;
let installing: Promise<boolean> | null = null;
let unavailable = 'not installed';
let enabledSetting = true;

/** The setting the last installSimdKernels call was given (runtime worker threads follow it). */
export function simdKernelsEnabled(): boolean {
  return enabledSetting;
}

/** Whether the SIMD kernels serve the active backend (the wasm backend, once installSimdKernels resolved true). */
export function simdKernelsActive(): boolean {
  return kernels !== null && tf.getBackend() === 'wasm';
}

/**
 * Assembles the kernel module and registers its kernels for the wasm backend, once per thread. Resolves false
 * (and everything keeps to tfjs's own kernels) when the active backend is not wasm, its memory is not reachable, or
 * this runtime lacks wasm SIMD, or `enabled` is false (LORAFUSE_SIMD_KERNELS=0, parsed by src/config.ts).
 */
export function installSimdKernels(enabled = true): Promise<boolean> {
  enabledSetting = enabled;
  if (!enabled) {
    unavailable = 'LORAFUSE_SIMD_KERNELS=0';
    return Promise.resolve(false);
  }
  if (tf.getBackend() !== 'wasm') return Promise.resolve(false);
  installing ??= load().catch((error: Error) => {
    unavailable = error.message;
    return false;
  });
  return installing;
}

/** Why the SIMD kernels are off (for the backend's log line); meaningless while they are active. */
export function simdKernelsUnavailableReason(): string {
  return unavailable;
}

async function load(): Promise<boolean> {
  const backend = tf.backend() as unknown as WasmBackend;
  const memory = backend.wasm?.asm?.memory;
  if (!(memory instanceof WebAssembly.Memory)) throw new Error("the wasm backend's memory is not reachable");
  const wabt = await wabtInit();
  const parsed = wabt.parseWat('lorafuse-kernels.wat', KERNELS_WAT, { simd: true });
  let binary: Uint8Array;
  try {
    parsed.validate();
    binary = parsed.toBinary({}).buffer;
  } finally {
    parsed.destroy();
  }
  const { instance } = await WebAssembly.instantiate(binary, { env: { memory } });
  kernels = instance.exports as unknown as KernelExports;
  registerKernels();
  overrideMatMulKernels(kernels);
  return true;
}

function registerKernels(): void {
  const run = kernels as KernelExports;
  tf.registerKernel({
    kernelName: GELU_ERF,
    backendName: 'wasm',
    kernelFunc: ({ inputs, backend }) => {
      const wasm = backend as unknown as WasmBackend;
      const x = inputs.x as tf.TensorInfo;
      const out = wasm.makeOutput(x.shape, 'float32');
      const cdf = wasm.makeOutput(x.shape, 'float32');
      run.gelu_erf(offset(wasm, x), offset(wasm, out), offset(wasm, cdf), size(x.shape));
      return [out, cdf];
    },
  });
  tf.registerKernel({
    kernelName: GELU_ERF_GRAD,
    backendName: 'wasm',
    kernelFunc: ({ inputs, backend }) => {
      const wasm = backend as unknown as WasmBackend;
      const { x, cdf, dy } = inputs as Record<string, tf.TensorInfo>;
      const out = wasm.makeOutput(x.shape, 'float32');
      run.gelu_erf_grad(
        offset(wasm, x),
        offset(wasm, cdf),
        offset(wasm, dy),
        offset(wasm, out),
        size(x.shape),
      );
      return out;
    },
  });
  tf.registerKernel({
    kernelName: COLUMN_SUM,
    backendName: 'wasm',
    kernelFunc: ({ inputs, backend }) => {
      const wasm = backend as unknown as WasmBackend;
      const x = inputs.x as tf.TensorInfo;
      const width = x.shape[x.shape.length - 1];
      const out = wasm.makeOutput([width], 'float32');
      run.column_sum(offset(wasm, x), offset(wasm, out), size(x.shape) / width, width);
      return out;
    },
  });
  tf.registerKernel({
    kernelName: ADAMW,
    backendName: 'wasm',
    kernelFunc: ({ inputs, backend, attrs }) => {
      const wasm = backend as unknown as WasmBackend;
      const { p, g, m, v } = inputs as Record<string, tf.TensorInfo>;
      const a = attrs as Record<keyof AdamWStep, number>;
      const outs = [p, m, v].map((t) => wasm.makeOutput(t.shape, 'float32'));
      const [pp, pg, pm, pv] = [p, g, m, v].map((t) => offset(wasm, t));
      const [po, mo, vo] = outs.map((t) => offset(wasm, t));
      const at = (name: keyof AdamWStep) => a[name];
      run.adamw(
        pp,
        pg,
        pm,
        pv,
        po,
        mo,
        vo,
        size(p.shape),
        at('stepSize'),
        at('beta1'),
        at('oneMinusBeta1'),
        at('beta2'),
        at('oneMinusBeta2'),
        at('eps'),
        at('decay'),
        at('invSqrtCorrection2'),
        at('gradScale'),
      );
      return outs;
    },
  });
  tf.registerKernel({
    kernelName: LAYER_NORM,
    backendName: 'wasm',
    kernelFunc: ({ inputs, backend, attrs }) => {
      const wasm = backend as unknown as WasmBackend;
      const { x, gamma, beta } = inputs as Record<string, tf.TensorInfo>;
      const width = x.shape[x.shape.length - 1];
      const rows = size(x.shape) / width;
      const out = wasm.makeOutput(x.shape, 'float32');
      const xhat = wasm.makeOutput(x.shape, 'float32');
      const invStd = wasm.makeOutput([rows], 'float32');
      const [px, pg, pb] = [x, gamma, beta].map((t) => offset(wasm, t));
      const [po, ph, pi] = [out, xhat, invStd].map((t) => offset(wasm, t));
      run.layer_norm(px, pg, pb, po, ph, pi, rows, width, attrs?.eps as number);
      return [out, xhat, invStd];
    },
  });
  tf.registerKernel({
    kernelName: LAYER_NORM_GRAD,
    backendName: 'wasm',
    kernelFunc: ({ inputs, backend }) => {
      const wasm = backend as unknown as WasmBackend;
      const { dy, xhat, invStd, gamma } = inputs as Record<string, tf.TensorInfo>;
      const width = dy.shape[dy.shape.length - 1];
      const dx = wasm.makeOutput(dy.shape, 'float32');
      const dgamma = wasm.makeOutput([width], 'float32');
      const dbeta = wasm.makeOutput([width], 'float32');
      const [pdy, ph, pi, pg] = [dy, xhat, invStd, gamma].map((t) => offset(wasm, t));
      const [pdx, pdg, pdb] = [dx, dgamma, dbeta].map((t) => offset(wasm, t));
      run.layer_norm_grad(pdy, ph, pi, pg, pdx, pdg, pdb, size(dy.shape) / width, width);
      return [dx, dgamma, dbeta];
    },
  });
  // Attention's attributes: batch, tokens, heads (headDim follows from the rows' width), scale.
  const attentionShape = (q: tf.TensorInfo, attrs: tf.NamedAttrMap | undefined) => {
    const { batch, tokens, heads } = attrs as { batch: number; tokens: number; heads: number };
    const headDim = q.shape[q.shape.length - 1] / heads;
    const padded = (tokens + 3) & ~3;
    return {
      batch,
      tokens,
      heads,
      headDim,
      scale: attrs?.scale as number,
      scratchBytes: (headDim + 1) * padded * 4,
    };
  };
  tf.registerKernel({
    kernelName: ATTENTION,
    backendName: 'wasm',
    kernelFunc: ({ inputs, backend, attrs }) => {
      const wasm = backend as unknown as WasmBackend;
      const { q, k, v, mask } = inputs as Record<string, tf.TensorInfo | undefined> as Record<
        string,
        tf.TensorInfo
      >;
      const dims = attentionShape(q, attrs);
      const context = wasm.makeOutput(q.shape, 'float32');
      const probs = wasm.makeOutput([dims.batch, dims.heads, dims.tokens, (dims.tokens + 3) & ~3], 'float32');
      const [pq, pk, pv, pc, pp] = [q, k, v, context, probs].map((t) => offset(wasm, t));
      const pm = mask ? offset(wasm, mask) : 0;
      withScratch(wasm, dims.scratchBytes, (scratch) =>
        run.attention(
          pq,
          pk,
          pv,
          pm,
          pc,
          pp,
          scratch,
          dims.batch,
          dims.tokens,
          dims.heads,
          dims.headDim,
          dims.scale,
        ),
      );
      return [context, probs];
    },
  });
  tf.registerKernel({
    kernelName: ATTENTION_GRAD,
    backendName: 'wasm',
    kernelFunc: ({ inputs, backend, attrs }) => {
      const wasm = backend as unknown as WasmBackend;
      const { dy, q, k, v, probs } = inputs as Record<string, tf.TensorInfo>;
      const dims = attentionShape(q, attrs);
      const [dq, dk, dv] = [q, k, v].map(() => wasm.makeOutput(q.shape, 'float32'));
      const [pdy, pq, pk, pv, pp] = [dy, q, k, v, probs].map((t) => offset(wasm, t));
      const [pdq, pdk, pdv] = [dq, dk, dv].map((t) => offset(wasm, t));
      withScratch(wasm, dims.scratchBytes, (scratch) =>
        run.attention_grad(
          pdy,
          pq,
          pk,
          pv,
          pp,
          pdq,
          pdk,
          pdv,
          scratch,
          dims.batch,
          dims.tokens,
          dims.heads,
          dims.headDim,
          dims.scale,
        ),
      );
      return [dq, dk, dv];
    },
  });
  // Second derivatives from tf ops, so gradients of gradients stay exact: ∂/∂dy = Φ + xφ, ∂/∂x = dy·φ·(2 − x²)
  // (the whole derivative in x: the cdf input is Φ(x), a function of x, so it gets none of its own).
  tf.registerGradient({
    kernelName: GELU_ERF_GRAD,
    inputsToSave: ['x', 'cdf', 'dy'],
    gradFunc: (g, saved) => {
      const [x, cdf, dy] = saved;
      const upstream = g as tf.Tensor;
      return {
        cdf: () => tf.zerosLike(cdf),
        dy: () => tf.mul(upstream, tf.add(cdf, tf.mul(x, normalDensity(x)))),
        x: () => tf.mul(tf.mul(upstream, dy), tf.mul(normalDensity(x), tf.sub(constant(2), tf.mul(x, x)))),
      };
    },
  });
}

/**
 * x·Φ(x) by the SIMD kernel (only while simdKernelsActive()). The forward pass keeps Φ(x), so the backward pass
 * computes only the density: dy·(Φ + x·φ).
 */
export function simdGeluErf(x: tf.Tensor): tf.Tensor {
  const gelu = tf.customGrad((...args: Array<tf.Tensor | tf.GradSaveFunc>) => {
    const input = args[0] as tf.Tensor;
    const [value, cdf] = tf.engine().runKernel(GELU_ERF, { x: input }) as tf.Tensor[];
    (args[1] as tf.GradSaveFunc)([input, cdf]);
    return {
      value,
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) =>
        tf.engine().runKernel(GELU_ERF_GRAD, { x: saved[0], cdf: saved[1], dy }) as tf.Tensor,
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
    const [out, xhat, invStd] = tf.engine().runKernel(
      LAYER_NORM,
      { x: input, gamma: g, beta: b },
      {
        eps,
      },
    ) as tf.Tensor[];
    (args[3] as tf.GradSaveFunc)([xhat, invStd, g]);
    return {
      value: out,
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
        const [xh, inv, gain] = saved;
        const [dx, dgamma, dbeta] = tf.engine().runKernel(LAYER_NORM_GRAD, {
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
  const attrs = { batch, tokens, heads, scale: 1 / Math.sqrt(hidden / heads) };
  const mask = additiveMask ? tf.reshape(additiveMask, [batch * tokens]) : undefined;
  const attention = tf.customGrad((...args: Array<tf.Tensor | tf.GradSaveFunc>) => {
    const [query, key, value] = args as tf.Tensor[];
    const inputs: tf.NamedTensorMap = { q: query, k: key, v: value };
    if (mask) inputs.mask = mask;
    const [context, probs] = tf.engine().runKernel(ATTENTION, inputs, attrs) as tf.Tensor[];
    (args[3] as tf.GradSaveFunc)([query, key, value, probs]);
    return {
      value: context,
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
        const [sq, sk, sv, p] = saved;
        return tf
          .engine()
          .runKernel(ATTENTION_GRAD, { dy, q: sq, k: sk, v: sv, probs: p }, attrs) as tf.Tensor[];
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
  return tf.engine().runKernel(COLUMN_SUM, { x }) as tf.Tensor1D;
}

/** Σ x² of a float32 tensor on the wasm backend, accumulated in float64, read straight from its memory. */
export function simdSumSquares(x: tf.Tensor): number {
  const backend = tf.backend() as unknown as WasmBackend;
  return (kernels as KernelExports).sum_squares(offset(backend, x), x.size);
}

/** The scalars of one AdamW step for one tensor (see the adamw kernel), each computed in float64. */
export interface AdamWStep {
  stepSize: number;
  beta1: number;
  oneMinusBeta1: number;
  beta2: number;
  oneMinusBeta2: number;
  eps: number;
  decay: number;
  invSqrtCorrection2: number;
  gradScale: number;
}

/** One AdamW step of a tensor as one SIMD pass: the new parameter, first and second moments. */
export function simdAdamW(
  p: tf.Tensor,
  g: tf.Tensor,
  m: tf.Tensor,
  v: tf.Tensor,
  step: AdamWStep,
): tf.Tensor[] {
  return tf.engine().runKernel(ADAMW, { p, g, m, v }, { ...step }) as tf.Tensor[];
}
