// What every model family provides (HF naming, forward pass) and the config.json field readers they share.
import { ModelInputError } from '../errors.ts';
import type * as tf from '@tensorflow/tfjs';
import type { ForwardContext } from '../forward-context.ts';

export type ModelConfig = Record<string, unknown> & { model_type: string };

/** Inputs under their Hugging Face names, already on the backend (token ids as int32). */
export interface ModelInputs {
  pixelValues?: tf.Tensor4D;
  inputIds?: tf.Tensor2D;
  attentionMask?: tf.Tensor2D;
  tokenTypeIds?: tf.Tensor2D;
}

export interface ModelOutputs {
  /** [N, num_labels]; absent for a CLIP vision tower given no head. */
  logits?: tf.Tensor2D;
  /** CLIP only: the projected image embedding [N, projection_dim]. */
  imageEmbeds?: tf.Tensor2D;
}

/** One model family: its HF naming (checkpoint names, as in transformers 4.x files) and its forward pass. */
export interface Architecture {
  modelType: string;
  inputKind: 'pixels' | 'tokens';
  /** Modules that are nn.Linear (or patch convolutions run as one): LoRA can target these. */
  linearModules(config: ModelConfig): string[];
  /** The task head: trained whole in LoRA fine-tuning and saved as PEFT modules_to_save. */
  headModules(config: ModelConfig): string[];
  /** Width of what the head (`classifier`) reads: the features a linear probe is fitted on. */
  headFeatures(config: ModelConfig): number;
  forward(ctx: ForwardContext, inputs: ModelInputs, config: ModelConfig): ModelOutputs;
}

export function numberField(config: ModelConfig, key: string, fallback?: number): number {
  const value = config[key] ?? fallback;
  if (typeof value !== 'number') throw new ModelInputError(`config.json: ${key} must be a number`);
  return value;
}

export function stringField(config: ModelConfig, key: string, fallback?: string): string {
  const value = config[key] ?? fallback;
  if (typeof value !== 'string') throw new ModelInputError(`config.json: ${key} must be a string`);
  return value;
}

export function range(n: number): number[] {
  return Array.from({ length: n }, (_, i) => i);
}
