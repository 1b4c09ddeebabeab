// What one forward pass reads: base weights, LoRA / L-LoRA modules and trained overrides, behind one linear().
import * as tf from '@tensorflow/tfjs';
import { type LoraModule, loraUpdate } from './lora/lora-module.ts';
import { affine } from './nn/functional.ts';
import type { ParamStore } from './params.ts';

/** What one forward pass reads: base weights, optional LoRA modules and whole-module overrides (trained heads). */
export class ForwardContext {
  constructor(
    readonly params: ParamStore,
    readonly lora: Map<string, LoraModule> = new Map(),
    readonly overrides: Map<string, tf.Tensor> = new Map(),
  ) {}

  weight(name: string): tf.Tensor {
    return this.overrides.get(name) ?? this.params.get(name);
  }

  hasWeight(name: string): boolean {
    return this.overrides.has(name) || this.params.has(name);
  }

  /**
   * nn.Linear by HF module name on [..., in]: x·Wᵀ + b, plus the module's LoRA update when adapted. 2-D inputs
   * skip the reshapes (a kernel each way, forward and backward).
   */
  linear(module: string, x: tf.Tensor): tf.Tensor {
    const kernel = this.weight(`${module}.weight`) as tf.Tensor2D;
    const inner = kernel.shape[0];
    const flat = (x.rank === 2 ? x : tf.reshape(x, [-1, inner])) as tf.Tensor2D;
    const weightName = `${module}.weight`;
    const frozenOutIn = this.overrides.has(weightName)
      ? undefined
      : () => this.params.outInLayout(weightName);
    let y: tf.Tensor2D = this.hasWeight(`${module}.bias`)
      ? affine(flat, kernel, this.weight(`${module}.bias`), frozenOutIn)
      : tf.matMul(flat, kernel);
    const lora = this.lora.get(module);
    if (lora) y = tf.add(y, loraUpdate(flat, lora));
    return x.rank === 2 ? y : tf.reshape(y, [...x.shape.slice(0, -1), kernel.shape[1]]);
  }
}
