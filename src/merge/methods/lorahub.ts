// LoraHub (Huang et al. 2023): per-input weights wᵢ in [−1.5, 1.5] found by a gradient-free evolution
// strategy (CMA-ES) minimising the tasks' validation loss + l1_weight·mean|w|. Declaration only: the search
// runs in src/eval/data-driven/lorahub.ts with the model runtime.
import type { DataDrivenMergeMethod } from '../method.ts';

export const lorahub: DataDrivenMergeMethod = {
  kind: 'data-driven',
  name: 'lorahub',
  description:
    'Per-input weights searched by CMA-ES on few labeled validation examples per task (loss + L1 penalty).',
  paper: 'https://arxiv.org/abs/2307.13269',
  notes:
    'Models: θ₀ + Σ wᵢ(θᵢ − θ₀). Adapters (the paper): A = A₀ + Σ wᵢ(Aᵢ − A₀), B likewise (A₀, B₀ the expansion point, zero for plain LoRA), written as an adapter. The search starts at wᵢ = 1/n (plain averaging) and keeps the best point it evaluated, so it never ends worse than averaging on the examples it reads.',
  baseModel: { models: 'required', adapters: 'required' },
  random: true,
  minModels: 2,
  data: { split: 'validation', labels: 'labeled' },
  inputs: { models: true, adapters: { space: 'parameters', output: 'adapter' } },
  parameters: [
    {
      name: 'max_evaluations',
      scope: 'global',
      type: 'integer',
      default: 40,
      required: false,
      range: { min: 2, max: 10000 },
      description:
        'Budget of objective evaluations (forward passes over the examples), the start point included.',
    },
    {
      name: 'examples',
      scope: 'global',
      type: 'integer',
      default: 32,
      required: false,
      range: { min: 1, max: 100000 },
      description: 'At most this many validation examples per task, drawn with the seed.',
    },
    {
      name: 'l1_weight',
      scope: 'global',
      type: 'number',
      default: 0.05,
      required: false,
      range: { min: 0, max: 100 },
      description: 'Weight of the mean |w| penalty added to the validation loss.',
    },
    {
      name: 'sigma',
      scope: 'global',
      type: 'number',
      default: 0.5,
      required: false,
      range: { min: 0.001, max: 3 },
      description: 'Initial CMA-ES step size.',
    },
  ],
};
