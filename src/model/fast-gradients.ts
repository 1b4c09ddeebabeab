import * as tf from '@tensorflow/tfjs';

let installed = false;

/** Swaps the last two axes: an explicit transpose, which wasm runs far faster than matMul's transpose flags. */
export function transposeLast2(x: tf.Tensor): tf.Tensor {
  const perm = x.shape.map((_, i) => i);
  const n = perm.length;
  [perm[n - 2], perm[n - 1]] = [perm[n - 1], perm[n - 2]];
  return tf.transpose(x, perm);
}

/**
 * Replaces tfjs's BatchMatMul gradient by one built from explicit transposes and flag-free matMuls: on wasm the
 * stock one (matMul with transpose flags) runs 10-20x slower. Built from differentiable ops, so gradients of
 * gradients still work.
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
      const mm = (x: tf.Tensor, y: tf.Tensor) => tf.matMul(x, y);
      const t = transposeLast2;
      if (!transposeA && !transposeB) return { a: () => mm(g, t(b)), b: () => mm(t(a), g) };
      if (!transposeA && transposeB) return { a: () => mm(g, b), b: () => mm(t(g), a) };
      if (transposeA && !transposeB) return { a: () => mm(b, t(g)), b: () => mm(a, g) };
      return { a: () => mm(t(b), t(g)), b: () => mm(t(g), t(a)) };
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
