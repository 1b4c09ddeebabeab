// mergekit `breadcrumbs_ties`: breadcrumbs' sparsifier with TIES's "sum" sign election; normalize
// defaults to false (unlike ties).
import { createGtaMethod } from '../generalized-task-arithmetic.ts';
import { BREADCRUMBS_NOTES } from '../sparsify.ts';

export const breadcrumbsTies = createGtaMethod({
  name: 'breadcrumbs_ties',
  description: 'Model Breadcrumbs sparsification followed by TIES sign election.',
  paper: 'https://arxiv.org/abs/2312.06795',
  sparsification: 'magnitude_outliers',
  consensus: 'sum',
  defaultNormalize: false,
  defaultRescale: false,
  notes: BREADCRUMBS_NOTES,
});
