// mergekit `dare_ties`: DARE's random drop + L1 rescale, then TIES's sign election ("sum").
import { createGtaMethod } from '../generalized-task-arithmetic.ts';

export const dareTies = createGtaMethod({
  name: 'dare_ties',
  description: 'DARE drop-and-rescale followed by TIES sign election.',
  paper: 'https://arxiv.org/abs/2311.03099',
  sparsification: 'random',
  consensus: 'sum',
  defaultNormalize: false,
  defaultRescale: true,
  notes:
    'Random draws come from lorafuse’s seeded generator keyed by (seed, tensor, model), so results are reproducible ' +
    'but not the same draws as torch.bernoulli.',
});
