// mergekit `della_linear`: DELLA's MagPrune drop and rescale without a sign election.
import { createGtaMethod } from '../generalized-task-arithmetic.ts';

export const dellaLinear = createGtaMethod({
  name: 'della_linear',
  description: 'DELLA drop-and-rescale followed by plain task arithmetic.',
  paper: 'https://arxiv.org/abs/2406.11617',
  sparsification: 'della_magprune',
  defaultNormalize: false,
  defaultRescale: true,
  notes:
    'Ranks are taken per row (a 1-D tensor is one row; an N-D tensor is [shape[0], rest]); ties rank by index. ' +
    'Draws come from lorafuse’s seeded generator, not torch.bernoulli.',
});
