// lorafuse's wasm kernels by name, with the inputs and attributes each takes (tfjs's kernel_names.ts style), and
// checked readers of both, so the registrations and the op wrappers agree on them without casts.
import type * as tf from '@tensorflow/tfjs';

export const GELU_ERF = 'LorafuseGeluErf';
export type GeluErfInputs = { x: tf.TensorInfo };

export const GELU_ERF_GRAD = 'LorafuseGeluErfGrad';
export type GeluErfGradInputs = { x: tf.TensorInfo; cdf: tf.TensorInfo; dy: tf.TensorInfo };

export const COLUMN_SUM = 'LorafuseColumnSum';
export type ColumnSumInputs = { x: tf.TensorInfo };

export const ADAMW = 'LorafuseAdamW';
export type AdamWInputs = { p: tf.TensorInfo; g: tf.TensorInfo; m: tf.TensorInfo; v: tf.TensorInfo };
/** The scalars of one AdamW step for one tensor (see the adamw kernel), each computed in float64. */
export type AdamWAttrs = {
  stepSize: number;
  beta1: number;
  oneMinusBeta1: number;
  beta2: number;
  oneMinusBeta2: number;
  eps: number;
  decay: number;
  invSqrtCorrection2: number;
  gradScale: number;
};
export const ADAMW_ATTRS: ReadonlyArray<keyof AdamWAttrs> = [
  'stepSize',
  'beta1',
  'oneMinusBeta1',
  'beta2',
  'oneMinusBeta2',
  'eps',
  'decay',
  'invSqrtCorrection2',
  'gradScale',
];

export const LAYER_NORM = 'LorafuseLayerNorm';
export type LayerNormInputs = { x: tf.TensorInfo; gamma: tf.TensorInfo; beta: tf.TensorInfo };
export type LayerNormAttrs = { eps: number };

export const LAYER_NORM_GRAD = 'LorafuseLayerNormGrad';
export type LayerNormGradInputs = {
  dy: tf.TensorInfo;
  xhat: tf.TensorInfo;
  invStd: tf.TensorInfo;
  gamma: tf.TensorInfo;
};

export const ATTENTION = 'LorafuseAttention';
/** `mask` (B·T additive floats) is optional. */
export type AttentionInputs = { q: tf.TensorInfo; k: tf.TensorInfo; v: tf.TensorInfo; mask?: tf.TensorInfo };
/** headDim follows from the rows' width and `heads`. */
export type AttentionAttrs = {
  batch: number;
  tokens: number;
  heads: number;
  scale: number;
};
export const ATTENTION_ATTRS: ReadonlyArray<keyof AttentionAttrs> = ['batch', 'tokens', 'heads', 'scale'];

export const ATTENTION_GRAD = 'LorafuseAttentionGrad';
export type AttentionGradInputs = {
  dy: tf.TensorInfo;
  q: tf.TensorInfo;
  k: tf.TensorInfo;
  v: tf.TensorInfo;
  probs: tf.TensorInfo;
};

/** Each named entry of a kernel's inputs or attributes, checked by `accept`: a failure is a bug in its op wrapper. */
function readNamed<K extends string, V>(
  kernel: string,
  entries: Record<string, unknown> | undefined,
  names: readonly K[],
  accept: (value: unknown) => value is V,
  problem: string,
): Record<K, V> {
  const found = {} as Record<K, V>;
  for (const name of names) {
    const value = entries?.[name];
    if (!accept(value)) throw new Error(`${kernel}: ${problem.replace('NAME', name)}`);
    found[name] = value;
  }
  return found;
}

const isTensorInfo = (value: unknown): value is tf.TensorInfo =>
  typeof value === 'object' && value !== null && 'dataId' in value;
const isNumber = (value: unknown): value is number => typeof value === 'number';

/** The named inputs a kernel needs, each checked present. */
export function readInputs<K extends string>(
  kernel: string,
  inputs: tf.NamedTensorInfoMap,
  names: readonly K[],
): Record<K, tf.TensorInfo> {
  return readNamed(kernel, inputs, names, isTensorInfo, 'input NAME is missing');
}

/** The named number attributes a kernel needs, each checked to be a number. */
export function readNumberAttrs<K extends string>(
  kernel: string,
  attrs: tf.NamedAttrMap | undefined,
  names: readonly K[],
): Record<K, number> {
  return readNamed(kernel, attrs, names, isNumber, 'attribute NAME must be a number');
}
