// lorafuse's small `mlp` model family (the torch twin is scripts/fixtures/lorafuse_mlp.py): weight names, forward pass.
import { ModelInputError } from '../errors.ts';
import * as tf from '@tensorflow/tfjs';
import type { ForwardContext } from '../forward-context.ts';
import { activation } from '../nn/functional.ts';
import { type Architecture, type ModelConfig, numberField, range, stringField } from './architecture.ts';

/**
 * lorafuse's small MLP. config.json: { "model_type": "mlp", "input_size": 784, "hidden_sizes": [64, 64],
 * "num_labels": 10, "hidden_act": "relu" }. Modules: layers.0 … layers.{k-1} (nn.Linear with bias), classifier.
 * Inputs: pixel_values [N, …] flattened to [N, input_size]. The torch twin is in scripts/fixtures/lorafuse_mlp.py.
 */
export const mlpArchitecture: Architecture = {
  modelType: 'mlp',
  inputKind: 'pixels',
  linearModules: (config) => [...range(hiddenSizes(config).length).map((i) => `layers.${i}`), 'classifier'],
  headModules: () => ['classifier'],
  headFeatures: (config) => hiddenSizes(config).at(-1) ?? numberField(config, 'input_size'),
  forward(ctx: ForwardContext, inputs, config) {
    if (!inputs.pixelValues) throw new ModelInputError('mlp needs pixel_values');
    const act = stringField(config, 'hidden_act', 'relu');
    let x: tf.Tensor = tf.reshape(inputs.pixelValues, [
      inputs.pixelValues.shape[0],
      numberField(config, 'input_size'),
    ]);
    for (const i of range(hiddenSizes(config).length)) x = activation(act, ctx.linear(`layers.${i}`, x));
    return { logits: ctx.linear('classifier', x) as tf.Tensor2D };
  },
};

function hiddenSizes(config: ModelConfig): number[] {
  const sizes = config.hidden_sizes;
  if (!Array.isArray(sizes))
    throw new ModelInputError('config.json: hidden_sizes must be an array of numbers');
  return sizes as number[];
}
