// The explicit list of merge methods: adding a method is one file and one line here.
import type { MergeMethod } from './method.ts';
import { breadcrumbs } from './methods/breadcrumbs.ts';
import { breadcrumbsTies } from './methods/breadcrumbs-ties.ts';
import { dareLinear } from './methods/dare-linear.ts';
import { dareTies } from './methods/dare-ties.ts';
import { della } from './methods/della.ts';
import { dellaLinear } from './methods/della-linear.ts';
import { linear } from './methods/linear.ts';
import { passthrough } from './methods/passthrough.ts';
import { taskArithmetic } from './methods/task-arithmetic.ts';
import { ties } from './methods/ties.ts';
import { karcher } from './methods/karcher.ts';
import { modelStockMethod } from './methods/model-stock.ts';
import { multislerp } from './methods/multislerp.ts';
import { nearswap } from './methods/nearswap.ts';
import { nuslerp } from './methods/nuslerp.ts';
import { sce } from './methods/sce.ts';
import { slerp } from './methods/slerp.ts';
import { peftLinear } from './methods/peft-linear.ts';
import { peftCat } from './methods/peft-cat.ts';
import { peftSvd } from './methods/peft-svd.ts';
import { peftTies } from './methods/peft-ties.ts';
import { peftTiesSvd } from './methods/peft-ties-svd.ts';
import { peftMagnitudePrune } from './methods/peft-magnitude-prune.ts';
import { peftMagnitudePruneSvd } from './methods/peft-magnitude-prune-svd.ts';
import { adamerging } from './methods/adamerging.ts';
import { fisherMerging } from './methods/fisher-merging.ts';
import { lorahub } from './methods/lorahub.ts';
import { regmean } from './methods/regmean.ts';

/** Every method lorafuse runs, in the order GET /v1/methods lists them (one line per method). */
export const MERGE_METHODS: readonly MergeMethod[] = [
  // elementwise mergekit methods
  linear,
  passthrough,
  // generalized task arithmetic (one routine, see generalized-task-arithmetic.ts)
  taskArithmetic,
  ties,
  dareLinear,
  dareTies,
  breadcrumbs,
  breadcrumbsTies,
  della,
  dellaLinear,
  // geometric methods
  slerp,
  nuslerp,
  multislerp,
  karcher,
  modelStockMethod,
  nearswap,
  sce,
  // PEFT add_weighted_adapter combination types
  peftLinear,
  peftCat,
  peftSvd,
  peftTies,
  peftTiesSvd,
  peftMagnitudePrune,
  peftMagnitudePruneSvd,
  // data-driven methods: they read each task's validation split (run through the API, not `lorafuse merge`)
  lorahub,
  adamerging,
  fisherMerging,
  regmean,
];

export function getMethod(name: string): MergeMethod | undefined {
  return MERGE_METHODS.find((method) => method.name === name);
}
