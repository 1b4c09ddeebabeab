// mergekit `passthrough`: the single input unchanged, optionally times its `scale`.
import type { TensorMergeMethod } from '../method.ts';

export const passthrough: TensorMergeMethod = {
  kind: 'tensor',
  name: 'passthrough',
  description: 'Copies the one input model, optionally scaling its tensors.',
  baseModel: 'none',
  random: false,
  minModels: 1,
  maxModels: 1,
  parameters: [
    {
      name: 'scale',
      scope: 'per-model',
      type: 'number',
      required: false,
      description: 'Multiplies every tensor (use a filter list to scale some).',
    },
  ],
  mergeTensor(ctx) {
    const input = ctx.inputs[0];
    const scale = input.params.scale;
    if (typeof scale !== 'number') return input.data.slice();
    const s = Math.fround(scale);
    const out = new Float32Array(input.data.length);
    for (let i = 0; i < out.length; i++) out[i] = input.data[i] * s;
    return out;
  },
};
