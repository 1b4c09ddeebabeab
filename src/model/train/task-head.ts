// The task head a fine-tune trains through: a stored head or a fresh seeded one put in place of the model's
// classifier, so a backbone whose classifier has its pretext's classes fine-tunes on a task with other classes.
import * as tf from '@tensorflow/tfjs';
import { ModelInputError } from '../errors.ts';
import type { HostTensor } from '../io/host-tensors.ts';
import type { LoadedModel } from '../load-model.ts';
import { deriveSeed, seededUniform } from '../random.ts';

/** The module every architecture lorafuse trains reads its logits from. */
export const CLASSIFIER = 'classifier';

/** A linear head: weight [classes, features] (HF layout), bias [classes] or none. */
export interface HeadWeights {
  weight: HostTensor;
  bias: HostTensor | null;
}

/** The classifier's [classes, features], or null when the model has none (a CLIP tower without a head). */
export function classifierShape(model: LoadedModel): [number, number] | null {
  if (!model.params.has(`${CLASSIFIER}.weight`)) return null;
  const hf = model.params.transposed.get(`${CLASSIFIER}.weight`);
  const [a, b] = model.params.get(`${CLASSIFIER}.weight`).shape;
  return hf ? [hf[0], hf[1]] : [a, b];
}

/**
 * A new head for `classes` classes as transformers initialises one: weight ~ normal(0, 0.02), bias 0. Seeded by
 * (seed, "head"), so tasks fine-tuned with one seed start from heads drawn the same way.
 */
export function freshHead(classes: number, features: number, seed: number): HeadWeights {
  const uniform = seededUniform(deriveSeed(seed, 'task-head'));
  const weight = new Float32Array(classes * features);
  for (let i = 0; i < weight.length; i++) {
    weight[i] = Math.sqrt(-2 * Math.log(1 - uniform())) * Math.cos(2 * Math.PI * uniform()) * 0.02;
  }
  return {
    weight: { dtype: 'F32', shape: [classes, features], data: weight },
    bias: { dtype: 'F32', shape: [classes], data: new Float32Array(classes) },
  };
}

/**
 * Puts `head` in place of the classifier (a head without bias gets a zero bias). The features must match the
 * body's; the classes are the head's.
 */
export function installHead(model: LoadedModel, head: HeadWeights): void {
  const shape = classifierShape(model);
  if (!shape) throw new ModelInputError(`${model.config.model_type} model has no ${CLASSIFIER} to replace`);
  const [classes, features] = head.weight.shape;
  if (head.weight.shape.length !== 2 || features !== shape[1]) {
    throw new ModelInputError(
      `the head is [${head.weight.shape}] but the model's features are ${shape[1]}: a head is [classes, ${shape[1]}]`,
    );
  }
  if (head.bias && (head.bias.shape.length !== 1 || head.bias.shape[0] !== classes)) {
    throw new ModelInputError(`the head's bias is [${head.bias.shape}], not [${classes}]`);
  }
  model.params.setLinearWeight(`${CLASSIFIER}.weight`, [classes, features], head.weight.data as Float32Array);
  const bias = head.bias?.data ?? new Float32Array(classes);
  model.params.replace(`${CLASSIFIER}.bias`, tf.tensor1d(bias as Float32Array));
}
