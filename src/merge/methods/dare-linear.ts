// mergekit `dare_linear`: Bernoulli(density) drop per task vector, rescaled to the original L1 norm
// (mergekit's RescaleNorm.l1, not 1/density), then task arithmetic.
import { createGtaMethod } from '../generalized-task-arithmetic.ts';

export const dareLinear = createGtaMethod({
  name: 'dare_linear',
  description: 'DARE: randomly drop task-vector entries, rescale, and add the weighted task vectors.',
  paper: 'https://arxiv.org/abs/2311.03099',
  sparsification: 'random',
  defaultNormalize: false,
  defaultRescale: true,
  notes:
    'Random draws come from lorafuse’s seeded generator keyed by (seed, tensor, model), so results are reproducible ' +
    'but not the same draws as torch.bernoulli.',
});
