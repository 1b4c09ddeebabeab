// Fisher merging (Matena & Raffel, NeurIPS 2022): θ = Σ wᵢFᵢθᵢ / Σ wᵢFᵢ elementwise, Fᵢ the diagonal
// empirical Fisher of model i on its own task's labeled validation examples (mean of squared per-example
// gradients of the log-likelihood). Declaration only: the math is in src/eval/data-driven/fisher-merging.ts.
import type { DataDrivenMergeMethod } from '../method.ts';

export const fisherMerging: DataDrivenMergeMethod = {
  kind: 'data-driven',
  name: 'fisher',
  description: 'Elementwise Fisher-weighted average: each model weighs most where its own task is sensitive.',
  paper: 'https://arxiv.org/abs/2111.09832',
  notes:
    'Diagonal empirical Fisher with the true labels, one backward pass per example. fisher_floor is added to every Fᵢ, so elements no task is sensitive to are plainly averaged (equal Fishers give exactly the average). Adapters are merged as their dense models W₀ + sᵢBᵢAᵢ and written as a model.',
  baseModel: { models: 'none', adapters: 'required' },
  random: false,
  minModels: 2,
  data: { split: 'validation', labels: 'labeled' },
  inputs: { models: true, adapters: { space: 'delta', output: 'model' } },
  parameters: [
    {
      name: 'weight',
      scope: 'per-model',
      type: 'number',
      default: 1,
      required: false,
      range: { min: 0, max: 1000000 },
      description: "Scales this model's Fisher (the paper's per-model λ).",
    },
    {
      name: 'examples',
      scope: 'global',
      type: 'integer',
      default: 256,
      required: false,
      range: { min: 1, max: 1000000 },
      description: 'At most this many validation examples per task (the first ones).',
    },
    {
      name: 'fisher_floor',
      scope: 'global',
      type: 'number',
      default: 1e-6,
      required: false,
      range: { min: 0, max: 1 },
      description:
        'Added to every Fisher value; keeps the weighted average defined where all Fishers are zero.',
    },
  ],
};
