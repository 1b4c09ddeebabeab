// mergekit `della`: rank-dependent Bernoulli drop (MagPrune), L1 rescale, "sum" sign election;
// normalize and rescale default to true.
import { createGtaMethod } from '../generalized-task-arithmetic.ts';

export const della = createGtaMethod({
  name: 'della',
  description: 'DELLA: drop entries with a probability that falls with their magnitude rank, then TIES.',
  paper: 'https://arxiv.org/abs/2406.11617',
  sparsification: 'della_magprune',
  consensus: 'sum',
  defaultNormalize: true,
  defaultRescale: true,
  notes:
    'Ranks are taken per row (a 1-D tensor is one row; an N-D tensor is [shape[0], rest]); ties rank by index. ' +
    'Draws come from lorafuse’s seeded generator, not torch.bernoulli.',
});
