// Batched prediction over host inputs (the CLI's predict and evaluation): inputs to the backend, outputs back.
import { ModelInputError } from './errors.ts';
import * as tf from '@tensorflow/tfjs';
import type { ModelInputs, ModelOutputs } from './architectures/index.ts';
import { ForwardContext } from './forward-context.ts';
import type { HostTensor } from './io/host-tensors.ts';
import type { LoadedAdapter } from './lora/peft-adapter.ts';
import type { LoadedModel } from './load-model.ts';

/** Inputs under HF names on the host, as read from an inputs or dataset file. */
export type HostInputs = Map<string, HostTensor>;

export function contextFor(model: LoadedModel, adapter?: LoadedAdapter | null): ForwardContext {
  return new ForwardContext(model.params, adapter?.modules, adapter?.overrides);
}

export function exampleCount(inputs: HostInputs): number {
  const first = inputs.get('pixel_values') ?? inputs.get('input_ids');
  if (!first) throw new ModelInputError('inputs need pixel_values or input_ids');
  return first.shape[0];
}

/** Rows [start, end) of the model's inputs, on the backend. Call inside tf.tidy. */
export function batchInputs(inputs: HostInputs, start: number, end: number): ModelInputs {
  const rows = (t: HostTensor) => {
    const per = t.shape.slice(1).reduce((a, b) => a * b, 1);
    const shape = [end - start, ...t.shape.slice(1)];
    if (t.dtype === 'F32') return tf.tensor((t.data as Float32Array).subarray(start * per, end * per), shape);
    const ints = Int32Array.from((t.data as BigInt64Array).subarray(start * per, end * per), (v) =>
      Number(v),
    );
    return tf.tensor(ints, shape, 'int32');
  };
  const out: ModelInputs = {};
  const pixels = inputs.get('pixel_values');
  if (pixels) out.pixelValues = rows(pixels) as tf.Tensor4D;
  const ids = inputs.get('input_ids');
  if (ids) out.inputIds = rows(ids) as tf.Tensor2D;
  const mask = inputs.get('attention_mask');
  if (mask) out.attentionMask = rows(mask) as tf.Tensor2D;
  const tokenTypes = inputs.get('token_type_ids');
  if (tokenTypes) out.tokenTypeIds = rows(tokenTypes) as tf.Tensor2D;
  return out;
}

export interface Predictions {
  logits?: HostTensor;
  imageEmbeds?: HostTensor;
}

/** Runs the model over all inputs in batches and gathers the outputs on the host. */
export async function predict(
  model: LoadedModel,
  inputs: HostInputs,
  options: { adapter?: LoadedAdapter | null; batchSize?: number } = {},
): Promise<Predictions> {
  const ctx = contextFor(model, options.adapter);
  const count = exampleCount(inputs);
  const batchSize = options.batchSize ?? 64;
  const parts: { logits: Float32Array[]; imageEmbeds: Float32Array[] } = { logits: [], imageEmbeds: [] };
  const widths: Record<string, number> = {};
  for (let start = 0; start < count; start += batchSize) {
    const end = Math.min(count, start + batchSize);
    const outputs = tf.tidy(
      () =>
        model.architecture.forward(ctx, batchInputs(inputs, start, end), model.config) as tf.NamedTensorMap,
    ) as ModelOutputs;
    for (const key of ['logits', 'imageEmbeds'] as const) {
      const t = outputs[key];
      if (!t) continue;
      widths[key] = t.shape[1];
      parts[key].push((await t.data()) as Float32Array);
      t.dispose();
    }
  }
  const gather = (key: 'logits' | 'imageEmbeds'): HostTensor | undefined => {
    if (parts[key].length === 0) return undefined;
    const data = new Float32Array(count * widths[key]);
    let offset = 0;
    for (const p of parts[key]) {
      data.set(p, offset);
      offset += p.length;
    }
    return { dtype: 'F32', shape: [count, widths[key]], data };
  };
  return { logits: gather('logits'), imageEmbeds: gather('imageEmbeds') };
}

/**
 * What a classifier head reads: the body's output for every example (vit and bert: the pooled features after the
 * final layer norm; clip_vision_model: the L2-normalised image embedding; mlp: the last hidden layer), got by
 * putting the identity in the classifier's place. [count, headFeatures] row-major.
 */
export async function bodyFeatures(
  model: LoadedModel,
  inputs: HostInputs,
  batchSize = 128,
): Promise<Float32Array> {
  // The identity stands in for the head whether or not the model has one (overrides come first).
  const hidden = model.architecture.headFeatures(model.config);
  const identity = tf.eye(hidden);
  const zeros = tf.zeros([hidden]);
  const ctx = new ForwardContext(
    model.params,
    new Map(),
    new Map([
      ['classifier.weight', identity],
      ['classifier.bias', zeros],
    ]),
  );
  const count = exampleCount(inputs);
  const out = new Float32Array(count * hidden);
  try {
    for (let start = 0; start < count; start += batchSize) {
      const end = Math.min(count, start + batchSize);
      const rows = tf.tidy(
        () => model.architecture.forward(ctx, batchInputs(inputs, start, end), model.config).logits!,
      );
      out.set((await rows.data()) as Float32Array, start * hidden);
      rows.dispose();
    }
  } finally {
    identity.dispose();
    zeros.dispose();
  }
  return out;
}
