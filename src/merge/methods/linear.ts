// mergekit `linear` (LinearMergeTask): Σ wᵢxᵢ, divided by Σ wᵢ when `normalize` (no zero guard, as
// upstream: a zero weight sum gives inf/NaN, which the planner reports before writing).
import type { TensorMergeMethod } from '../method.ts';
import { isTrue } from '../parameter-ranges.ts';

export const linear: TensorMergeMethod = {
  kind: 'tensor',
  name: 'linear',
  description: 'Weighted average of the inputs (model soup).',
  paper: 'https://arxiv.org/abs/2203.05482',
  baseModel: 'none',
  random: false,
  minModels: 1,
  linearInInputs: true,
  parameters: [
    {
      name: 'weight',
      scope: 'per-model',
      type: 'number',
      required: true,
      description: 'Weight of this model.',
    },
    {
      name: 'normalize',
      scope: 'global',
      type: 'boolean',
      default: true,
      required: false,
      description: 'Divide by the sum of the weights.',
    },
  ],
  parameterRule: 'with normalize, the weights must not sum to 0',
  checkParameters({ global, models }) {
    if (!isTrue(global.normalize)) return undefined;
    // The same float32 sum mergeTensor divides by.
    let weightSum = 0;
    for (const { params } of models) weightSum = Math.fround(weightSum + Math.fround(Number(params.weight)));
    if (weightSum !== 0) return undefined;
    return { parameter: 'weight', message: 'the weights sum to 0, so normalize would divide by zero' };
  },
  mergeTensor(ctx) {
    const n = ctx.inputs[0].data.length;
    const out = new Float32Array(n);
    let weightSum = 0;
    for (const input of ctx.inputs) {
      const w = Math.fround(Number(input.params.weight));
      weightSum = Math.fround(weightSum + w);
      const x = input.data;
      for (let i = 0; i < n; i++) out[i] += w * x[i];
    }
    if (isTrue(ctx.params.normalize)) {
      for (let i = 0; i < n; i++) out[i] /= weightSum;
    }
    return out;
  },
};
