// The explicit list of merge methods: adding a method is one file and one line here.
import type { MergeMethod } from './method.ts';
import { linear } from './methods/linear.ts';

/** Every method lorafuse runs, in the order GET /v1/methods lists them (one line per method). */
export const MERGE_METHODS: readonly MergeMethod[] = [
  // elementwise mergekit methods
  linear,
];

export function getMethod(name: string): MergeMethod | undefined {
  return MERGE_METHODS.find((method) => method.name === name);
}
