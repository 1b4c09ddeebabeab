// Model weights on the backend, stored once in the layout the forward pass reads, freed with the store.
import { ModelInputError } from './errors.ts';
import * as tf from '@tensorflow/tfjs';
import type { HostTensor } from './io/host-tensors.ts';

/**
 * A model's weights on the tfjs backend under their Hugging Face names. Linear (and patch-conv) weights are held
 * transposed as [in, out] so the forward pass multiplies without a transpose; `toHost` restores HF layout.
 */
export class ParamStore {
  readonly tensors = new Map<string, tf.Tensor>();
  /** Original HF shape of every weight held transposed (conv kernels were also flattened). */
  readonly transposed = new Map<string, number[]>();
  /** [out, in] copies of frozen linear weights, made on first use by a backward pass (see `outInLayout`). */
  private readonly outIn = new Map<string, tf.Tensor2D>();

  static fromHost(weights: Map<string, HostTensor>, linearModules: Iterable<string>): ParamStore {
    const store = new ParamStore();
    const linear = new Set(linearModules);
    for (const [name, host] of weights) {
      if (host.dtype !== 'F32') continue; // int buffers (position_ids) are recomputed, never loaded
      const module = name.endsWith('.weight') ? name.slice(0, -'.weight'.length) : null;
      if (module !== null && linear.has(module))
        store.setLinearWeight(name, host.shape, host.data as Float32Array);
      else store.tensors.set(name, tf.tensor(host.data as Float32Array, host.shape));
    }
    return store;
  }

  /** Stores an HF [out, in, ...] weight as [in·…, out]. */
  setLinearWeight(name: string, hfShape: number[], data: Float32Array): void {
    const out = hfShape[0];
    const inner = hfShape.slice(1).reduce((a, b) => a * b, 1);
    const kernel = tf.tidy(() => tf.transpose(tf.tensor2d(data, [out, inner])));
    this.replace(name, kernel);
    this.transposed.set(name, hfShape);
  }

  /**
   * A frozen linear weight in [out, in] layout, for the input gradient dy·Wᵀ of every training step: made once and
   * kept with the store instead of transposed each step. Undefined for trainable (Variable) weights, which change.
   * Costs one more copy of each frozen linear weight while the model trains (LoRA keeps them all frozen).
   */
  outInLayout(name: string): tf.Tensor2D | undefined {
    const weight = this.tensors.get(name);
    if (!weight || weight instanceof tf.Variable || weight.rank !== 2) return undefined;
    let copy = this.outIn.get(name);
    if (!copy) {
      copy = tf.keep(tf.transpose(weight as tf.Tensor2D));
      this.outIn.set(name, copy);
    }
    return copy;
  }

  has(name: string): boolean {
    return this.tensors.has(name);
  }

  get(name: string): tf.Tensor {
    const t = this.tensors.get(name);
    if (!t) throw new ModelInputError(`model weight ${name} is missing`);
    return t;
  }

  /** Replaces tensors (e.g. with trainable variables) keeping the layout bookkeeping. */
  replace(name: string, tensor: tf.Tensor): void {
    const old = this.tensors.get(name);
    if (old && old !== tensor) old.dispose();
    this.outIn.get(name)?.dispose();
    this.outIn.delete(name);
    this.tensors.set(name, tensor);
  }

  /** Reads one weight back in HF layout. */
  async toHost(name: string): Promise<HostTensor> {
    const t = this.get(name);
    const hfShape = this.transposed.get(name);
    if (!hfShape) return { dtype: 'F32', shape: t.shape, data: (await t.data()) as Float32Array };
    const back = tf.transpose(t);
    const data = (await back.data()) as Float32Array;
    back.dispose();
    return { dtype: 'F32', shape: hfShape, data };
  }

  names(): string[] {
    return [...this.tensors.keys()];
  }

  dispose(): void {
    for (const t of [...this.tensors.values(), ...this.outIn.values()]) t.dispose();
    this.tensors.clear();
    this.outIn.clear();
  }
}
