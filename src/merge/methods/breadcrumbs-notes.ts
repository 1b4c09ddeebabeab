// The one place lorafuse knowingly departs from mergekit's breadcrumbs (shared by both variants).
export const BREADCRUMBS_NOTES =
  'mergekit keeps indices[n_bot:-n_top] of the ascending |δ| order, which is empty when int(gamma·numel) = 0 ' +
  '(every tensor under 1/gamma elements, e.g. norms and biases, loses its whole task vector). lorafuse drops ' +
  'nothing at the top in that case, as the method intends. Set mergekit_compat: true to reproduce mergekit exactly.';
