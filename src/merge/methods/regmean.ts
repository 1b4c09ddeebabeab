// RegMean (Jin et al., ICLR 2023): per linear layer W = (Σ G̃ᵢ)⁻¹ Σ G̃ᵢ Wᵢ with Gᵢ = XᵢᵀXᵢ the Gram matrix of
// that layer's inputs on task i's data, off-diagonals scaled by alpha; every other tensor is averaged.
// Declaration only: the math is in src/eval/data-driven/regmean.ts.
import type { DataDrivenMergeMethod } from '../method.ts';

export const regmean: DataDrivenMergeMethod = {
  kind: 'data-driven',
  name: 'regmean',
  description: 'Closed-form least-squares merge of every linear layer from its input Gram matrices.',
  paper: 'https://arxiv.org/abs/2212.09849',
  notes:
    "G̃ᵢ = alpha·Gᵢ + (1 − alpha)·diag(Gᵢ) (the paper's non-diagonal scaling; alpha = 1 is the exact least-squares solution). Solved in float64. Biases, norms and embeddings are plainly averaged, as in the paper. Adapters are merged as their dense models W₀ + sᵢBᵢAᵢ and written as a model.",
  baseModel: { models: 'none', adapters: 'required' },
  random: false,
  minModels: 2,
  data: { split: 'validation', labels: 'unlabeled' },
  inputs: { models: true, adapters: { space: 'delta', output: 'model' } },
  parameters: [
    {
      name: 'alpha',
      scope: 'global',
      type: 'number',
      default: 0.9,
      required: false,
      range: { min: 0, max: 1 },
      description: "Scale of the Gram matrices' off-diagonal entries (1: exact least squares; 0: diagonal).",
    },
    {
      name: 'examples',
      scope: 'global',
      type: 'integer',
      default: 256,
      required: false,
      range: { min: 1, max: 1000000 },
      description: 'At most this many validation inputs per task (the first ones).',
    },
  ],
};
