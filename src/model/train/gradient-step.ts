// One batch's mean cross-entropy and its gradients for the trainable variables.
import { ModelInputError } from '../errors.ts';
import * as tf from '@tensorflow/tfjs';
import type { ForwardContext } from '../forward-context.ts';
import { batchInputs, type HostInputs } from '../inference.ts';
import type { LoadedModel } from '../load-model.ts';
import { crossEntropy } from '../nn/functional.ts';

/** Mean cross-entropy of one batch and its gradient for every trainable variable, keyed like `variables`. */
export function computeGradients(
  model: LoadedModel,
  ctx: ForwardContext,
  variables: Map<string, tf.Variable>,
  batch: HostInputs,
  labels: Int32Array,
): { loss: tf.Scalar; grads: Map<string, tf.Tensor> } {
  const keyOf = new Map([...variables].map(([key, v]) => [v.name, key]));
  const { value, grads } = tf.variableGrads(() => {
    const { logits } = model.architecture.forward(ctx, batchInputs(batch, 0, labels.length), model.config);
    if (!logits)
      throw new ModelInputError('the model produced no logits (a CLIP model needs a classifier head)');
    return crossEntropy(logits, tf.tensor1d(labels, 'int32'));
  }, [...variables.values()]);
  const named = new Map<string, tf.Tensor>();
  for (const [variableName, g] of Object.entries(grads)) named.set(keyOf.get(variableName)!, g);
  return { loss: value, grads: named };
}
