// tfjs's own matMul kernels on wasm (BatchMatMul and _FusedMatMul), served by lorafuse's SIMD matmul for float32
// products it can take, and by the original XNNPACK kernels for everything else. Overriding the kernels, not adding
// an op, means every matMul in lorafuse (linear layers, LoRA factors, their gradients, evaluation) takes the fast
// path, and tfjs's registered gradients still apply.
import * as tf from '@tensorflow/tfjs';
import { MATMUL_PACK_BYTES, matmulPackABytes } from './matmul-wat.ts';
import { type WasmBackend, offset, size, wasmBackend, withScratch } from './wasm-heap.ts';

/** The matmul exports of the kernel module (see matmul-wat.ts); arguments are byte offsets or counts. */
export interface MatMulExports {
  matmul(
    a: number,
    b: number,
    bias: number,
    c: number,
    m: number,
    k: number,
    n: number,
    aRow: number,
    aCol: number,
    hasBias: number,
    packB: number,
    packA: number,
  ): void;
  transpose(x: number, out: number, rows: number, cols: number): void;
}

/** The inputs of BatchMatMul (a, b) and _FusedMatMul (also bias and preluActivationWeights, both optional). */
interface MatMulInputs {
  a: tf.TensorInfo;
  b: tf.TensorInfo;
  bias?: tf.TensorInfo;
  preluActivationWeights?: tf.TensorInfo;
}

/** One product as the kernel runs it: `batch` products of [m, k]·[k, n], operands stepping by their strides. */
interface Product {
  m: number;
  k: number;
  n: number;
  batch: number;
  aStride: number;
  bStride: number;
  outShape: number[];
}

/**
 * How to run op(a)·op(b) with the SIMD kernel, or null to leave it to tfjs: float32 operands whose batch axes are
 * equal or one side's are all 1 (tfjs's general broadcasting and its shape errors stay with tfjs).
 */
function plan(a: tf.TensorInfo, b: tf.TensorInfo, transposeA: boolean, transposeB: boolean): Product | null {
  if (a.dtype !== 'float32' || b.dtype !== 'float32' || a.shape.length < 2 || b.shape.length < 2) return null;
  const [a0, a1] = a.shape.slice(-2);
  const [b0, b1] = b.shape.slice(-2);
  const [m, k] = transposeA ? [a1, a0] : [a0, a1];
  const [kB, n] = transposeB ? [b1, b0] : [b0, b1];
  if (k !== kB) return null;
  const outerA = a.shape.slice(0, -2);
  const outerB = b.shape.slice(0, -2);
  const batchA = size(outerA);
  const batchB = size(outerB);
  if (batchA !== batchB && batchA !== 1 && batchB !== 1) return null;
  let outer: number[];
  try {
    outer = tf.broadcast_util.assertAndGetBroadcastShape(outerA, outerB);
  } catch {
    return null;
  }
  return {
    m,
    k,
    n,
    batch: Math.max(batchA, batchB),
    aStride: batchA > 1 ? m * k * 4 : 0,
    bStride: batchB > 1 ? k * n * 4 : 0,
    outShape: [...outer, m, n],
  };
}

/**
 * Runs a planned product. Aᵀ is free (the kernel reads A through strides); Bᵀ is transposed back into scratch
 * first, once per distinct B (k·n floats: a weight's size, small beside the product).
 */
function multiply(
  run: MatMulExports,
  wasm: WasmBackend,
  operands: MatMulInputs,
  product: Product,
  transposeA: boolean,
  transposeB: boolean,
): tf.TensorInfo {
  const { m, k, n, batch, aStride, bStride } = product;
  const out = wasm.makeOutput(product.outShape, 'float32');
  if (m * n === 0) return out;
  const pa = offset(wasm, operands.a);
  const pb = offset(wasm, operands.b);
  const pc = offset(wasm, out);
  const bias = operands.bias ? offset(wasm, operands.bias) : 0;
  const [aRow, aCol] = transposeA ? [4, m * 4] : [k * 4, 4];
  const hasBias = operands.bias ? 1 : 0;
  // A stored transposed with rows of 1024+ floats is copied slice by slice (see sliceOfA in matmul-wat.ts).
  const packABytes = transposeA && m >= 1024 ? matmulPackABytes(m) : 0;
  // One scratch block: the kernel's band of B, its slice of A when packed, then B transposed back when it
  // comes transposed.
  const transposedBytes = transposeB ? k * n * 4 : 0;
  withScratch(wasm, MATMUL_PACK_BYTES + packABytes + transposedBytes, (scratch) => {
    const packA = packABytes ? scratch + MATMUL_PACK_BYTES : 0;
    const unTransposed = scratch + MATMUL_PACK_BYTES + packABytes;
    for (let i = 0; i < batch; i++) {
      let b = pb + i * bStride;
      if (transposeB) {
        if (i === 0 || bStride !== 0) run.transpose(b, unTransposed, n, k);
        b = unTransposed;
      }
      run.matmul(pa + i * aStride, b, bias, pc + i * m * n * 4, m, k, n, aRow, aCol, hasBias, scratch, packA);
    }
  });
  return out;
}

/** Whether _FusedMatMul's extras are ones the kernel applies: no activation, and a bias of one value per column. */
function fusedFits(inputs: MatMulInputs, attrs: tf.NamedAttrMap, n: number): boolean {
  const activation = (attrs.activation as string | undefined) ?? 'linear';
  const bias = inputs.bias;
  return (
    activation === 'linear' &&
    inputs.preluActivationWeights === undefined &&
    (bias === undefined ||
      (bias.dtype === 'float32' && size(bias.shape) === n && bias.shape[bias.shape.length - 1] === n))
  );
}

/** The kernel functions this module registered (to tell them from tfjs's own). */
const servedByLorafuse = new Set<tf.KernelFunc>();

/** Whether tfjs's wasm matMul kernels are lorafuse's (overrideMatMulKernels ran on this thread). */
export function matMulKernelsOverridden(): boolean {
  return ['BatchMatMul', '_FusedMatMul'].every((name) => {
    const kernel = tf.getKernel(name, 'wasm');
    return kernel !== undefined && servedByLorafuse.has(kernel.kernelFunc);
  });
}

/** Re-registers one wasm kernel so that `serve` runs first and the original kernel takes what it declines. */
function override(
  kernelName: string,
  serve: (inputs: MatMulInputs, attrs: tf.NamedAttrMap, backend: WasmBackend) => tf.TensorInfo | null,
): void {
  const original = tf.getKernel(kernelName, 'wasm');
  if (!original) throw new Error(`tfjs-backend-wasm has no ${kernelName} kernel`);
  const kernelFunc: tf.KernelFunc = (args) => {
    // Every matMul of a step passes here: plain reads, no per-call name lists.
    const { a, b, bias, preluActivationWeights } = args.inputs;
    if (!a || !b) throw new Error(`${kernelName}: inputs a and b are required`);
    const inputs: MatMulInputs = { a, b, bias, preluActivationWeights };
    return serve(inputs, args.attrs ?? {}, wasmBackend(args.backend)) ?? original.kernelFunc(args);
  };
  servedByLorafuse.add(kernelFunc);
  tf.unregisterKernel(kernelName, 'wasm');
  tf.registerKernel({ ...original, kernelFunc });
}

/** Serves BatchMatMul and _FusedMatMul on wasm by the SIMD matmul (once per thread, after the backend is set). */
export function overrideMatMulKernels(run: MatMulExports): void {
  const serve = (fused: boolean) => (inputs: MatMulInputs, attrs: tf.NamedAttrMap, backend: WasmBackend) => {
    const transposeA = attrs.transposeA === true;
    const transposeB = attrs.transposeB === true;
    const product = plan(inputs.a, inputs.b, transposeA, transposeB);
    if (!product || (fused && !fusedFits(inputs, attrs, product.n))) return null;
    const operands = fused ? inputs : { a: inputs.a, b: inputs.b };
    return multiply(run, backend, operands, product, transposeA, transposeB);
  };
  override('BatchMatMul', serve(false));
  override('_FusedMatMul', serve(true));
}
