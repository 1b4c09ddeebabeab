// lorafuse's own SIMD kernels on the wasm backend, registered as tfjs kernels (so tidy, disposal, profiling and
// autograd treat them like any other). The module is assembled from text by wabt at start-up (a few ms; nothing
// generated is committed) and instantiated on the backend's own WebAssembly.Memory. Kernel names, inputs and
// attributes are in kernel-names.ts; the ops that run them are in simd-ops.ts.
import * as tf from '@tensorflow/tfjs';
import wabtInit from 'wabt';
import { normalDensity } from '../nn/normal-cdf.ts';
import { constant } from '../nn/constants.ts';
import {
  ADAMW,
  ADAMW_ATTRS,
  ATTENTION,
  ATTENTION_ATTRS,
  ATTENTION_GRAD,
  COLUMN_SUM,
  GELU_ERF,
  GELU_ERF_GRAD,
  LAYER_NORM,
  LAYER_NORM_GRAD,
  readInputs,
  readNumberAttrs,
} from './kernel-names.ts';
import { KERNELS_WAT } from './kernels-wat.ts';
import { type MatMulExports, overrideMatMulKernels } from './matmul-kernel.ts';
import { offset, size, wasmBackend, withScratch } from './wasm-heap.ts';

// The WebAssembly global as used here (tsconfig's libs carry no WebAssembly types without the DOM's).
declare const WebAssembly: {
  Memory: abstract new (...args: never[]) => object;
  instantiate(binary: Uint8Array, imports: object): Promise<{ instance: { exports: object } }>;
};

/** The exports of the kernel module: every argument is a byte offset into the backend's heap, or a count. */
export interface KernelExports extends MatMulExports {
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

const EXPORT_NAMES: ReadonlyArray<keyof KernelExports> = [
  'matmul',
  'transpose',
  'gelu_erf',
  'gelu_erf_grad',
  'column_sum',
  'sum_squares',
  'adamw',
  'layer_norm',
  'layer_norm_grad',
  'attention',
  'attention_grad',
];

/** Whether an instance's exports are the kernel module's (every function present). */
function isKernelExports(exports: object): exports is KernelExports {
  return EXPORT_NAMES.every((name) => typeof Reflect.get(exports, name) === 'function');
}

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

/** The kernel module's exports while the kernels are installed (simd-ops.ts calls sum_squares directly). */
export function kernelExports(): KernelExports {
  if (!kernels) throw new Error('the SIMD kernels are not installed');
  return kernels;
}

async function load(): Promise<boolean> {
  const backend = wasmBackend(tf.backend());
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
  if (!isKernelExports(instance.exports)) throw new Error('the kernel module lacks an export');
  kernels = instance.exports;
  registerKernels(kernels);
  overrideMatMulKernels(kernels);
  return true;
}

function registerKernels(run: KernelExports): void {
  tf.registerKernel({
    kernelName: GELU_ERF,
    backendName: 'wasm',
    kernelFunc: ({ inputs, backend }) => {
      const wasm = wasmBackend(backend);
      const { x } = readInputs(GELU_ERF, inputs, ['x']);
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
      const wasm = wasmBackend(backend);
      const { x, cdf, dy } = readInputs(GELU_ERF_GRAD, inputs, ['x', 'cdf', 'dy']);
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
      const wasm = wasmBackend(backend);
      const { x } = readInputs(COLUMN_SUM, inputs, ['x']);
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
      const wasm = wasmBackend(backend);
      const { p, g, m, v } = readInputs(ADAMW, inputs, ['p', 'g', 'm', 'v']);
      const a = readNumberAttrs(ADAMW, attrs, ADAMW_ATTRS);
      const outs = [p, m, v].map((t) => wasm.makeOutput(t.shape, 'float32'));
      const [pp, pg, pm, pv] = [p, g, m, v].map((t) => offset(wasm, t));
      const [po, mo, vo] = outs.map((t) => offset(wasm, t));
      run.adamw(
        pp,
        pg,
        pm,
        pv,
        po,
        mo,
        vo,
        size(p.shape),
        a.stepSize,
        a.beta1,
        a.oneMinusBeta1,
        a.beta2,
        a.oneMinusBeta2,
        a.eps,
        a.decay,
        a.invSqrtCorrection2,
        a.gradScale,
      );
      return outs;
    },
  });
  tf.registerKernel({
    kernelName: LAYER_NORM,
    backendName: 'wasm',
    kernelFunc: ({ inputs, backend, attrs }) => {
      const wasm = wasmBackend(backend);
      const { x, gamma, beta } = readInputs(LAYER_NORM, inputs, ['x', 'gamma', 'beta']);
      const { eps } = readNumberAttrs(LAYER_NORM, attrs, ['eps']);
      const width = x.shape[x.shape.length - 1];
      const rows = size(x.shape) / width;
      const out = wasm.makeOutput(x.shape, 'float32');
      const xhat = wasm.makeOutput(x.shape, 'float32');
      const invStd = wasm.makeOutput([rows], 'float32');
      const [px, pg, pb] = [x, gamma, beta].map((t) => offset(wasm, t));
      const [po, ph, pi] = [out, xhat, invStd].map((t) => offset(wasm, t));
      run.layer_norm(px, pg, pb, po, ph, pi, rows, width, eps);
      return [out, xhat, invStd];
    },
  });
  tf.registerKernel({
    kernelName: LAYER_NORM_GRAD,
    backendName: 'wasm',
    kernelFunc: ({ inputs, backend }) => {
      const wasm = wasmBackend(backend);
      const { dy, xhat, invStd, gamma } = readInputs(LAYER_NORM_GRAD, inputs, [
        'dy',
        'xhat',
        'invStd',
        'gamma',
      ]);
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
  const attentionShape = (kernel: string, q: tf.TensorInfo, attrs: tf.NamedAttrMap | undefined) => {
    const { batch, tokens, heads, scale } = readNumberAttrs(kernel, attrs, ATTENTION_ATTRS);
    const headDim = q.shape[q.shape.length - 1] / heads;
    const padded = (tokens + 3) & ~3;
    return { batch, tokens, heads, headDim, scale, scratchBytes: (headDim + 1) * padded * 4 };
  };
  tf.registerKernel({
    kernelName: ATTENTION,
    backendName: 'wasm',
    kernelFunc: ({ inputs, backend, attrs }) => {
      const wasm = wasmBackend(backend);
      const { q, k, v } = readInputs(ATTENTION, inputs, ['q', 'k', 'v']);
      const mask = inputs.mask;
      const dims = attentionShape(ATTENTION, q, attrs);
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
      const wasm = wasmBackend(backend);
      const { dy, q, k, v, probs } = readInputs(ATTENTION_GRAD, inputs, ['dy', 'q', 'k', 'v', 'probs']);
      const dims = attentionShape(ATTENTION_GRAD, q, attrs);
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
