// AdaMerging (Yang et al., ICLR 2024): task-wise or layer-wise coefficients λ of θ₀ + Σ λᵢ τᵢ learned by
// minimising the merged model's prediction entropy on unlabeled validation inputs. Declaration only: the
// optimisation runs in src/eval/data-driven/adamerging.ts with the model runtime.
import type { DataDrivenMergeMethod } from '../method.ts';

export const adamerging: DataDrivenMergeMethod = {
  kind: 'data-driven',
  name: 'adamerging',
  description:
    'Task-wise or layer-wise task-arithmetic coefficients learned by entropy minimisation on unlabeled inputs.',
  paper: 'https://arxiv.org/abs/2310.02575',
  notes:
    "Layer-wise means one coefficient per task and parameter tensor, as the paper's code does. dL/dλ = Σ ⟨dL/dW, τ⟩ over the tensors λ scales, with Adam. Each task's entropy is measured with that task's own head. Adapters are merged in delta space (τᵢ = sᵢBᵢAᵢ plus the head change) and written as a model. The learned coefficients are in the job result.",
  baseModel: { models: 'required', adapters: 'required' },
  random: true,
  minModels: 2,
  data: { split: 'validation', labels: 'unlabeled' },
  inputs: { models: true, adapters: { space: 'delta', output: 'model' } },
  parameters: [
    {
      name: 'granularity',
      scope: 'global',
      type: 'string',
      default: 'layer',
      required: false,
      enum: ['task', 'layer'],
      description: 'task: one λ per task; layer: one λ per task and parameter tensor.',
    },
    {
      name: 'init',
      scope: 'global',
      type: 'number',
      default: 0.3,
      required: false,
      range: { min: -2, max: 2 },
      description: 'Initial value of every λ (the paper uses 0.3).',
    },
    {
      name: 'steps',
      scope: 'global',
      type: 'integer',
      default: 100,
      required: false,
      range: { min: 1, max: 100000 },
      description: 'Adam steps; each reads one batch of every task.',
    },
    {
      name: 'learning_rate',
      scope: 'global',
      type: 'number',
      default: 0.001,
      required: false,
      range: { min: 0, max: 10 },
      description: 'Adam learning rate for λ (the paper uses 1e-3).',
    },
    {
      name: 'batch_size',
      scope: 'global',
      type: 'integer',
      default: 16,
      required: false,
      range: { min: 1, max: 4096 },
      description: 'Unlabeled inputs per task per step.',
    },
    {
      name: 'examples',
      scope: 'global',
      type: 'integer',
      default: 256,
      required: false,
      range: { min: 1, max: 1000000 },
      description:
        'At most this many validation inputs per task (batches are drawn from them with the seed).',
    },
  ],
};
