// What both planners (models, adapters) share: method lookup and input-count checks, output dtype,
// the memory estimate, opening inputs and planned copies.
import type { DType, TensorInfo } from '../tensors/index.ts';
import { MergePlanError } from './errors.ts';
import type { MergeMethod, TensorMergeMethod } from './method.ts';
import type { MergePlan, PlannedInput, PlannedTensor } from './plan-types.ts';
import type { Recipe } from './recipe.ts';
import { getMethod } from './registry.ts';
import type { InputResolver, ModelSource, TensorSource } from './sources.ts';

export const FLOAT_DTYPES: ReadonlySet<DType> = new Set(['F64', 'F32', 'F16', 'BF16', 'F8_E4M3', 'F8_E5M2']);

const RECIPE_DTYPE: Record<string, DType> = {
  float32: 'F32',
  float16: 'F16',
  bfloat16: 'BF16',
  float64: 'F64',
  F32: 'F32',
  F16: 'F16',
  BF16: 'BF16',
  F64: 'F64',
  float8_e4m3fn: 'F8_E4M3',
  float8_e5m2: 'F8_E5M2',
  F8_E4M3: 'F8_E4M3',
  F8_E5M2: 'F8_E5M2',
};

/** mergekit writes out_dtype, else dtype; with neither, each tensor keeps its reference input's dtype. */
export function recipeOutputDtype(recipe: Recipe): DType | undefined {
  const name = recipe.out_dtype ?? recipe.dtype;
  return name === undefined ? undefined : RECIPE_DTYPE[name];
}

/** A fixed allowance for the runtime, headers and buffers besides the tensors themselves. */
const MEMORY_CONSTANT_BYTES = 96 * 1024 * 1024;

export function estimateMemory(inputCount: number, largestNumel: number): number {
  return (inputCount + 2) * largestNumel * 4 + MEMORY_CONSTANT_BYTES;
}

export function lookupMethod(recipe: Recipe): MergeMethod {
  const method = getMethod(recipe.merge_method);
  if (!method) {
    throw new MergePlanError('unknown_method', `unknown merge_method "${recipe.merge_method}"`, {
      parameter: 'merge_method',
    });
  }
  return method;
}

/** Checks the number of inputs against the method's declaration. */
export function checkInputCount(
  method: TensorMergeMethod,
  inputs: readonly PlannedInput[],
  hasBase: boolean,
): void {
  if (method.baseModel === 'required' && !hasBase) {
    throw new MergePlanError('missing_base_model', `${method.name} needs base_model`, {
      parameter: 'base_model',
    });
  }
  const counted = method.baseModel === 'none' ? inputs.length : inputs.filter((i) => !i.isBase).length;
  const what = method.baseModel === 'none' ? 'inputs' : 'models besides the base';
  if (counted < method.minModels) {
    throw new MergePlanError(
      'too_few_models',
      `${method.name} needs at least ${method.minModels} ${what}, the recipe has ${counted}`,
      { parameter: 'models' },
    );
  }
  if (method.maxModels !== undefined && counted > method.maxModels) {
    throw new MergePlanError(
      'too_many_models',
      `${method.name} takes at most ${method.maxModels} ${what}, the recipe has ${counted}`,
      { parameter: 'models' },
    );
  }
}

export function shapeText(info: TensorInfo): string {
  return `[${info.shape.join(', ')}]`;
}

export async function openModels(
  refs: readonly string[],
  resolver: InputResolver,
  opened: MergePlan['opened'],
): Promise<Map<string, ModelSource>> {
  const sources = new Map<string, ModelSource>();
  for (const ref of refs) {
    if (sources.has(ref)) continue;
    let source: ModelSource;
    try {
      source = await resolver.openModel(ref);
    } catch (error) {
      if (error instanceof MergePlanError) throw error;
      throw new MergePlanError('input_unavailable', `cannot open model ${ref}: ${(error as Error).message}`);
    }
    opened.push(source.checkpoint);
    sources.set(ref, source);
  }
  return sources;
}

export function copyTensor(
  name: string,
  info: TensorInfo,
  dtype: DType,
  source: TensorSource,
  note: string,
  sourceName = name,
): PlannedTensor {
  return {
    name,
    shape: info.shape,
    dtype,
    action: 'copy',
    reads: [{ source, name: sourceName }],
    t: 0,
    global: {},
    perModel: [],
    note,
  };
}
