// Public API of the merge engine (the CLI, the worker and the API import only this module).
export { describePlan } from './describe-plan.ts';
export { AdapterError, MergeCancelledError, MergePlanError, RecipeError } from './errors.ts';
export type { ExecuteOptions, MergeProgressEvent, MergeResult } from './execute.ts';
export { executeMerge, outputSideFiles } from './execute-merge.ts';
export {
  type AdapterConfig,
  type AdapterLayout,
  type AdapterModule,
  baseWeightShape,
  checkAdapterAgainstBase,
  describeAdapter,
  moduleScaling,
  parseAdapterConfig,
} from './lora/adapter.ts';
export type {
  AdapterMergeMethod,
  BaseModelUse,
  DataDrivenInputSupport,
  DataDrivenMergeMethod,
  DataRequirement,
  LoraModuleInput,
  LoraModuleOutput,
  MergeMethod,
  ParameterScope,
  ParameterSpec,
  ParameterType,
  ParameterValue,
  RandomStream,
  TensorMergeMethod,
} from './method.ts';
export { checkRecipeParameters, describeRange, isTrue } from './parameter-ranges.ts';
export { evaluateSetting, interpolateGradient } from './parameters.ts';
export { closePlan, planMerge } from './plan.ts';
export { type DataDrivenPlan, needsTaskData, planDataDrivenMerge } from './plan-data-driven.ts';
export type { MergePlan, PlannedInput, PlannedModule, PlannedTensor } from './plan-types.ts';
export {
  type ConditionalSetting,
  type LoraOptions,
  DEFAULT_RECIPE_LIMITS,
  type ParameterSetting,
  parseRecipe,
  type Recipe,
  type RecipeInput,
  type RecipeLimits,
  recipeReferences,
} from './recipe.ts';
export { recipeJsonSchema } from './recipe-schema.ts';
export { getMethod, MERGE_METHODS } from './registry.ts';
export { parseSize } from './shard-size.ts';
export { planShards, type ShardPlan, shardPlanFor, subsetPlan } from './shard-plan.ts';
export type { AdapterSource, InputResolver, ModelSource, TensorSource } from './sources.ts';
