// Accuracy and loss of a model (with its adapter or head) over a labelled dataset, in batches.
import { ModelInputError } from './errors.ts';
import * as tf from '@tensorflow/tfjs';
import type { ForwardContext } from './forward-context.ts';
import { batchInputs } from './inference.ts';
import type { LoadedModel } from './load-model.ts';
import { crossEntropy } from './nn/functional.ts';
import type { Dataset } from './train/dataset.ts';

export interface EvaluationResult {
  examples: number;
  accuracy: number;
  loss: number;
  /** Argmax per example, for agreement metrics (disentanglement error). */
  predictions: Int32Array;
}

/** Accuracy and mean cross-entropy of a model (with whatever the context adds) over a labelled dataset. */
export async function evaluateModel(
  model: LoadedModel,
  ctx: ForwardContext,
  dataset: Dataset,
  batchSize = 64,
): Promise<EvaluationResult> {
  const n = dataset.labels.length;
  const predictions = new Int32Array(n);
  let correct = 0;
  let lossSum = 0;
  for (let start = 0; start < n; start += batchSize) {
    const end = Math.min(n, start + batchSize);
    const labels = dataset.labels.subarray(start, end);
    const [loss, argmax] = tf.tidy(() => {
      const { logits } = model.architecture.forward(
        ctx,
        batchInputs(dataset.inputs, start, end),
        model.config,
      );
      if (!logits)
        throw new ModelInputError('the model produced no logits (a CLIP model needs a classifier head)');
      const labelTensor = tf.tensor1d(labels, 'int32');
      return [tf.mul(crossEntropy(logits, labelTensor), end - start), tf.argMax(logits, -1)];
    });
    lossSum += (await loss.data())[0];
    const picked = (await argmax.data()) as Int32Array;
    loss.dispose();
    argmax.dispose();
    predictions.set(picked, start);
    for (let i = 0; i < picked.length; i++) if (picked[i] === labels[i]) correct += 1;
  }
  return { examples: n, accuracy: n === 0 ? 0 : correct / n, loss: n === 0 ? 0 : lossSum / n, predictions };
}
