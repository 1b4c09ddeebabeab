// Turns a recipe into per-tensor work: opens the inputs, checks the recipe against the method's
// declaration and the inputs' shapes, resolves every parameter for every tensor (gradients and
// filters included) and fixes the output layout. Errors name the tensor, the shapes and the parameter.
import { MergePlanError } from './errors.ts';
import { countLayers, gradientPosition } from './layers.ts';
import type { TensorMergeMethod } from './method.ts';
import { checkRecipeParameters } from './parameter-ranges.ts';
import { type ResolveInput, resolveParameters, unusedParameterNames } from './parameters.ts';
import { needsTaskData } from './plan-data-driven.ts';
import { planAdapterMerge } from './plan-adapter.ts';
import {
  checkInputCount,
  copyTensor,
  estimateMemory,
  FLOAT_DTYPES,
  lookupMethod,
  openModels,
  recipeOutputDtype,
  shapeText,
} from './plan-common.ts';
import type { MergePlan, PlannedInput, PlannedTensor } from './plan-types.ts';
import type { Recipe } from './recipe.ts';
import type { InputResolver, TensorSource } from './sources.ts';

/** Plans a merge; the caller must closePlan(plan) (executeMerge does not). */
export async function planMerge(recipe: Recipe, resolver: InputResolver): Promise<MergePlan> {
  const method = lookupMethod(recipe);
  if (method.kind === 'data-driven') throw needsTaskData(method.name);
  // Every value the recipe sets, whichever tensors it reaches, before any input is opened.
  checkRecipeParameters(method, recipe);
  if (recipe.models.some((input) => input.adapter !== undefined))
    return planAdapterMerge(recipe, method, resolver);
  if (method.kind !== 'tensor') {
    throw new MergePlanError('wrong_input_kind', `${method.name} merges LoRA adapters: list adapter inputs`, {
      parameter: 'merge_method',
    });
  }
  const opened: MergePlan['opened'] = [];
  try {
    return await planModelMerge(recipe, method, resolver, opened);
  } catch (error) {
    await Promise.allSettled(opened.map((o) => o.close()));
    throw error;
  }
}

async function planModelMerge(
  recipe: Recipe,
  method: TensorMergeMethod,
  resolver: InputResolver,
  opened: MergePlan['opened'],
): Promise<MergePlan> {
  // mergekit's order: the listed models, then an unlisted base model last.
  const resolveInputs: ResolveInput[] = recipe.models.map((input) => ({
    ref: input.model!,
    // A method that takes no base treats a listed base_model as an ordinary input (it needs its weight).
    isBase: method.baseModel !== 'none' && input.model === recipe.base_model,
    parameters: input.parameters,
  }));
  const baseListed = recipe.models.some((input) => input.model === recipe.base_model);
  if (recipe.base_model !== undefined && !baseListed) {
    if (method.baseModel === 'none') {
      throw new MergePlanError(
        'unused_base_model',
        `${method.name} does not use base_model: list ${recipe.base_model} under models or remove base_model`,
        { parameter: 'base_model' },
      );
    }
    resolveInputs.push({ ref: recipe.base_model, isBase: true });
  }
  const inputs: PlannedInput[] = resolveInputs.map((i) => ({ ref: i.ref, isBase: i.isBase, kind: 'model' }));
  checkInputCount(method, inputs, recipe.base_model !== undefined);

  const sources = await openModels(
    inputs.map((i) => i.ref),
    resolver,
    opened,
  );
  const checkpoints = inputs.map((input) => sources.get(input.ref)!.checkpoint as TensorSource);
  const baseIndex = inputs.findIndex((input) => input.isBase);
  const referenceIndex = Math.max(baseIndex, 0);
  const reference = checkpoints[referenceIndex];
  const referenceSource = sources.get(inputs[referenceIndex].ref)!;
  const names = reference.names();
  const layerCount = countLayers(referenceSource.config, names);
  const outDtype = recipeOutputDtype(recipe);
  const warnings = [
    ...(recipe.notes ?? []),
    ...unusedParameterNames(method, recipe).map((p) => `${p} is ignored`),
  ];

  for (let i = 0; i < inputs.length; i++) {
    if (i === referenceIndex) continue;
    for (const name of checkpoints[i].names()) {
      if (!reference.has(name)) {
        throw new MergePlanError(
          'missing_tensor',
          `tensor ${name} is in ${inputs[i].ref} but not in ${inputs[referenceIndex].ref}`,
          { tensor: name },
        );
      }
    }
  }

  const tensors: PlannedTensor[] = [];
  let largest = 0;
  for (const name of names) {
    const info = reference.info(name);
    largest = Math.max(largest, info.numel);
    const isFloat = FLOAT_DTYPES.has(info.dtype);
    const dtype = isFloat ? (outDtype ?? info.dtype) : info.dtype;
    const missingIn = inputs.filter((_, i) => !checkpoints[i].has(name)).map((input) => input.ref);
    if (missingIn.length > 0) {
      if (baseIndex < 0) {
        throw new MergePlanError('missing_tensor', `tensor ${name} is missing from ${missingIn.join(', ')}`, {
          tensor: name,
        });
      }
      tensors.push(
        copyTensor(
          name,
          info,
          dtype,
          checkpoints[baseIndex],
          `only in the base; missing from ${missingIn.join(', ')}`,
        ),
      );
      continue;
    }
    for (let i = 0; i < inputs.length; i++) {
      const other = checkpoints[i].info(name);
      if (other.shape.length !== info.shape.length || other.shape.some((d, k) => d !== info.shape[k])) {
        throw new MergePlanError(
          'shape_mismatch',
          `tensor ${name} has shape ${shapeText(other)} in ${inputs[i].ref} but ${shapeText(info)} in ${inputs[referenceIndex].ref}`,
          { tensor: name },
        );
      }
    }
    if (!isFloat) {
      tensors.push(copyTensor(name, info, dtype, reference, `${info.dtype} is not a float type: copied`));
      continue;
    }
    const t = gradientPosition(name, layerCount);
    const { global, perModel } = resolveParameters(method, recipe, resolveInputs, name, t, info.numel);
    tensors.push({
      name,
      shape: info.shape,
      dtype,
      action: 'merge',
      reads: checkpoints.map((source) => ({ source, name })),
      t,
      global,
      perModel,
    });
  }

  return {
    recipe,
    method,
    inputs,
    tensors,
    modules: [],
    output: { kind: 'model', stem: 'model', config: referenceSource.config },
    seed: recipe.seed ?? 0,
    layerCount,
    layerCountSource:
      referenceSource.config && configHasLayers(referenceSource.config) ? 'config.json' : 'tensor names',
    computeDtype: 'F32',
    memoryEstimateBytes: estimateMemory(inputs.length, largest),
    warnings,
    opened,
  };
}

function configHasLayers(config: Record<string, unknown>): boolean {
  return countLayers(config, []) > 0;
}

/** Closes every input the plan opened. */
export async function closePlan(plan: MergePlan): Promise<void> {
  const results = await Promise.allSettled(plan.opened.map((o) => o.close()));
  plan.opened.length = 0;
  const failed = results.find((r) => r.status === 'rejected');
  if (failed) throw (failed as PromiseRejectedResult).reason;
}
