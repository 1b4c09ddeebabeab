// mergekit `task_arithmetic`: base + λ·Σ wᵢ(xᵢ − base); normalize defaults to false.
import { createGtaMethod } from '../generalized-task-arithmetic.ts';

export const taskArithmetic = createGtaMethod({
  name: 'task_arithmetic',
  description: 'Adds the weighted task vectors (fine-tuned − base) to the base.',
  paper: 'https://arxiv.org/abs/2212.04089',
  defaultNormalize: false,
  defaultRescale: false,
  linearInInputs: true,
});
