// mergekit `ties`: magnitude top-k per task vector, sign election on the weighted deltas ("sum"),
// disjoint mean over the agreeing weights; normalize defaults to true.
import { createGtaMethod } from '../generalized-task-arithmetic.ts';

export const ties = createGtaMethod({
  name: 'ties',
  description:
    'TIES: trim each task vector to its largest entries, elect a sign, merge the agreeing entries.',
  paper: 'https://arxiv.org/abs/2306.01708',
  sparsification: 'magnitude',
  consensus: 'sum',
  defaultNormalize: true,
  defaultRescale: false,
});
