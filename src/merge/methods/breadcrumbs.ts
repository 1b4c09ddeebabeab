// mergekit `breadcrumbs`: drop the gamma largest and the smallest |δ| (magnitude_outliers), no
// consensus; normalize defaults to false.
import { createGtaMethod } from '../generalized-task-arithmetic.ts';
import { BREADCRUMBS_NOTES } from '../sparsify.ts';

export const breadcrumbs = createGtaMethod({
  name: 'breadcrumbs',
  description: 'Model Breadcrumbs: drop the largest outliers and the smallest entries of each task vector.',
  paper: 'https://arxiv.org/abs/2312.06795',
  sparsification: 'magnitude_outliers',
  defaultNormalize: false,
  defaultRescale: false,
  notes: BREADCRUMBS_NOTES,
});
