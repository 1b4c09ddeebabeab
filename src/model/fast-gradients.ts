// Faster gradients for tfjs ops on wasm: explicit transposes instead of matMul's flags, Identity clones that share data.
// outputs.
import * as tf from '@tensorflow/tfjs';
import { simdKernelsActive } from './simd/simd-kernels.ts';

let installed = false;

/** Swaps the last two axes: an explicit transpose, which wasm runs far faster than matMul's transpose flags. */
export function transposeLast2(x: tf.Tensor): tf.Tensor {
  const perm = x.shape.map((_, i) => i);
  const n = perm.length;
  [perm[n - 2], perm[n - 1]] = [perm[n - 1], perm[n - 2]];
  return tf.transpose(x, perm);
}

/**
 * op(a)·op(b), op a transpose where asked: by matMul's own flags where lorafuse's SIMD matmul serves them (Aᵀ is free
 * there, Bᵀ a pack of b), else by explicit transposes, which tfjs's wasm kernel runs far faster than its flags.
 */
export function matMulTransposed(
  a: tf.Tensor,
  b: tf.Tensor,
  transposeA: boolean,
  transposeB: boolean,
): tf.Tensor {
  if (simdKernelsActive()) return tf.matMul(a, b, transposeA, transposeB);
  return tf.matMul(transposeA ? transposeLast2(a) : a, transposeB ? transposeLast2(b) : b);
}

/**
 * Replaces tfjs's BatchMatMul gradient by one whose transposes go through matMulTransposed: on wasm without the
 * SIMD matmul the stock one (matMul with transpose flags) runs 10-20x slower. Built from differentiable ops, so
 * gradients of gradients still work.
 */
export function installFastGradients(): void {
  if (installed) return;
  installed = true;
  tf.registerGradient({
    kernelName: 'BatchMatMul',
    inputsToSave: ['a', 'b'],
    gradFunc: (dy: tf.Tensor | tf.Tensor[], saved: tf.Tensor[], attrs: tf.NamedAttrMap) => {
      const g = dy as tf.Tensor;
      const [a, b] = saved;
      const transposeA = attrs.transposeA as boolean;
      const transposeB = attrs.transposeB as boolean;
      const mm = matMulTransposed;
      if (!transposeA && !transposeB)
        return { a: () => mm(g, b, false, true), b: () => mm(a, g, true, false) };
      if (!transposeA && transposeB)
        return { a: () => mm(g, b, false, false), b: () => mm(g, a, true, false) };
      if (transposeA && !transposeB)
        return { a: () => mm(b, g, false, true), b: () => mm(a, g, false, false) };
      return { a: () => mm(b, g, true, true), b: () => mm(g, a, true, true) };
    },
  });
}

let identityShared = false;

/**
 * tfjs clones every tensor it saves for the backward pass through the Identity kernel, which on wasm copies the
 * data: a third of a training step's kernels. Tensors are immutable (variables swap their data on assign), so the
 * clone can share the data with a reference count instead, exactly as wasm's Reshape does.
 */
export function shareIdentityOnWasm(): void {
  if (identityShared || tf.getBackend() !== 'wasm') return;
  identityShared = true;
  tf.unregisterKernel('Identity', 'wasm');
  tf.registerKernel({
    kernelName: 'Identity',
    backendName: 'wasm',
    kernelFunc: ({ inputs, backend }) => {
      const x = inputs.x as tf.TensorInfo;
      (backend as unknown as { incRef(dataId: object): void }).incRef(x.dataId);
      return { dataId: x.dataId, shape: x.shape, dtype: x.dtype };
    },
  });
}
