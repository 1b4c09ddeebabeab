// Plans merges whose inputs are PEFT LoRA adapters.
// - space `parameters` (the default with tensor methods; the L-LoRA paper's way): lora_A and lora_B
//   of every module are merged as checkpoints whose base is the adapters' expansion point (A₀, B₀ from
//   lorafuse_init.safetensors) or zero; the output is an adapter with the same ranks.
// - space `delta`, and every adapter method (peft_*): the method sees whole modules (ΔWᵢ = sᵢBᵢAᵢ) and
//   the output is a re-factored adapter or, with output `model`, the base model plus the merged deltas.
import { AdapterError, MergePlanError } from './errors.ts';
import { countLayers, gradientPosition } from './layers.ts';
import {
  type AdapterLayout,
  type AdapterModule,
  baseModuleName,
  checkAdapterAgainstBase,
  describeAdapter,
  PEFT_PREFIX,
  parseAdapterConfig,
  type AdapterConfig,
} from './lora/adapter.ts';
import type { MergeMethod } from './method.ts';
import { type ResolveInput, resolveParameters, unusedParameterNames } from './parameters.ts';
import {
  checkInputCount,
  copyTensor,
  estimateMemory,
  FLOAT_DTYPES,
  openModels,
  recipeOutputDtype,
  shapeText,
} from './plan-common.ts';
import type { MergePlan, PlannedInput, PlannedModule, PlannedTensor } from './plan-types.ts';
import type { Recipe } from './recipe.ts';
import type { AdapterSource, InputResolver, ModelSource, TensorRead, TensorSource } from './sources.ts';

export interface OpenedAdapter {
  ref: string;
  source: AdapterSource;
  config: AdapterConfig;
  layout: AdapterLayout;
}

function asPlanError(ref: string, error: unknown): unknown {
  if (error instanceof AdapterError) {
    return new MergePlanError(`adapter_${error.code}`, `adapter ${ref}: ${error.message}`, {
      tensor: error.module,
    });
  }
  return error;
}

export async function openAdapters(
  refs: readonly string[],
  resolver: InputResolver,
  opened: MergePlan['opened'],
): Promise<OpenedAdapter[]> {
  const cache = new Map<string, OpenedAdapter>();
  const result: OpenedAdapter[] = [];
  for (const ref of refs) {
    let entry = cache.get(ref);
    if (!entry) {
      let source: AdapterSource;
      try {
        source = await resolver.openAdapter(ref);
      } catch (error) {
        if (error instanceof MergePlanError) throw error;
        throw new MergePlanError(
          'input_unavailable',
          `cannot open adapter ${ref}: ${(error as Error).message}`,
        );
      }
      opened.push(source.weights);
      if (source.init) opened.push(source.init);
      try {
        const config = parseAdapterConfig(source.config);
        entry = { ref, source, config, layout: describeAdapter(config, source.weights) };
      } catch (error) {
        throw asPlanError(ref, error);
      }
      cache.set(ref, entry);
    }
    result.push(entry);
  }
  return result;
}

/** Every adapter must adapt the same modules and save the same whole modules. */
export function checkSameModules(adapters: readonly OpenedAdapter[]): void {
  const first = adapters[0];
  const modules = new Set(first.layout.modules.map((m) => m.module));
  const saved = new Set(first.layout.savedModules);
  for (const other of adapters.slice(1)) {
    const theirs = new Set(other.layout.modules.map((m) => m.module));
    for (const module of new Set([...modules, ...theirs])) {
      if (!modules.has(module) || !theirs.has(module)) {
        const has = modules.has(module) ? first.ref : other.ref;
        const lacks = modules.has(module) ? other.ref : first.ref;
        throw new MergePlanError(
          'module_mismatch',
          `LoRA module ${module} is in ${has} but not in ${lacks}`,
          {
            tensor: module,
          },
        );
      }
    }
    const theirSaved = new Set(other.layout.savedModules);
    for (const name of new Set([...saved, ...theirSaved])) {
      if (!saved.has(name) || !theirSaved.has(name)) {
        throw new MergePlanError('module_mismatch', `saved module tensor ${name} is not in every adapter`, {
          tensor: name,
        });
      }
    }
  }
}

export async function planAdapterMerge(
  recipe: Recipe,
  method: MergeMethod,
  resolver: InputResolver,
): Promise<MergePlan> {
  const opened: MergePlan['opened'] = [];
  try {
    return await planAdapters(recipe, method, resolver, opened);
  } catch (error) {
    await Promise.allSettled(opened.map((o) => o.close()));
    throw error;
  }
}

async function planAdapters(
  recipe: Recipe,
  method: MergeMethod,
  resolver: InputResolver,
  opened: MergePlan['opened'],
): Promise<MergePlan> {
  const adapters = await openAdapters(
    recipe.models.map((input) => input.adapter!),
    resolver,
    opened,
  );
  checkSameModules(adapters);
  let base: ModelSource | undefined;
  if (recipe.base_model !== undefined) {
    base = (await openModels([recipe.base_model], resolver, opened)).get(recipe.base_model)!;
    for (const adapter of adapters) {
      try {
        checkAdapterAgainstBase(adapter.layout, base.checkpoint);
      } catch (error) {
        throw asPlanError(adapter.ref, error);
      }
    }
  }
  const deltaSpace = method.kind === 'adapter' || recipe.lora?.space === 'delta';
  const names = base ? base.checkpoint.names() : adapters[0].source.weights.names();
  const layerCount = countLayers(base?.config, names);
  const layerCountSource: MergePlan['layerCountSource'] =
    base?.config && countLayers(base.config, []) > 0 ? 'config.json' : 'tensor names';
  const warnings = [
    ...(recipe.notes ?? []),
    ...unusedParameterNames(method, recipe).map((p) => `${p} is ignored`),
  ];
  const scalings = new Set(adapters.map((a) => `${a.config.loraAlpha}/${a.config.r}/${a.config.useRslora}`));
  if (!deltaSpace && scalings.size > 1) {
    warnings.push('the adapters have different LoRA scalings; parameter space merges A and B as stored');
  }
  const resolveInputs: ResolveInput[] = adapters.map((a, i) => ({
    ref: a.ref,
    isBase: false,
    parameters: recipe.models[i].parameters,
  }));
  const common = {
    recipe,
    method,
    seed: recipe.seed ?? 0,
    layerCount,
    layerCountSource,
    computeDtype: 'F32' as const,
    warnings,
    opened,
  };
  if (deltaSpace) return planDeltaSpace(common, adapters, resolveInputs, base);
  if (method.kind !== 'tensor') throw new Error('unreachable: adapter methods plan in delta space');

  // Parameter space: the expansion point is the base of every lora tensor.
  const init = adapters.find((a) => a.source.init)?.source.init;
  if (init && adapters.some((a) => !a.source.init)) {
    warnings.push('only some adapters record an expansion point; the first one recorded is used for all');
  }
  const inputs: PlannedInput[] = adapters.map((a) => ({ ref: a.ref, isBase: false, kind: 'adapter' }));
  const withBase = method.baseModel !== 'none';
  if (withBase) {
    inputs.push({
      ref: init ? 'expansion point (lorafuse_init.safetensors)' : 'expansion point (zero)',
      isBase: true,
      kind: 'expansion-point',
    });
    resolveInputs.push({ ref: 'expansion point', isBase: true });
  }
  checkInputCount(method, inputs, withBase);
  const outDtype = recipeOutputDtype(recipe);
  const firstWeights = adapters[0].source.weights;
  const saved = new Set(adapters[0].layout.savedModules.map((name) => PEFT_PREFIX + name));
  const tensors: PlannedTensor[] = [];
  let largest = 0;
  for (const name of firstWeights.names()) {
    const info = firstWeights.info(name);
    largest = Math.max(largest, info.numel);
    for (const adapter of adapters) {
      const other = adapter.source.weights.info(name);
      if (other.shape.join() !== info.shape.join()) {
        const module = name.slice(PEFT_PREFIX.length).replace(/\.(lora_[A-Za-z_]+)(\.weight)?$/, '');
        throw new MergePlanError(
          'rank_mismatch',
          `${name} is ${shapeText(other)} in ${adapter.ref} but ${shapeText(info)} in ${adapters[0].ref}: ` +
            `space parameters needs the same rank per module (module ${module}); use lora: {space: delta}`,
          { tensor: module },
        );
      }
    }
    const dtype = FLOAT_DTYPES.has(info.dtype) ? (outDtype ?? info.dtype) : info.dtype;
    if (!FLOAT_DTYPES.has(info.dtype)) {
      tensors.push(copyTensor(name, info, dtype, firstWeights, `${info.dtype} is not a float type: copied`));
      continue;
    }
    const reads: TensorRead[] = adapters.map((a) => ({ source: a.source.weights as TensorSource, name }));
    if (withBase) reads.push(expansionPoint(name, info.shape, saved.has(name), init, base));
    const t = gradientPosition(name, layerCount);
    const { global, perModel } = resolveParameters(method, recipe, resolveInputs, name, t, info.numel);
    tensors.push({ name, shape: info.shape, dtype, action: 'merge', reads, t, global, perModel });
  }
  const first = adapters[0];
  return {
    ...common,
    inputs,
    tensors,
    modules: [],
    output: {
      kind: 'adapter',
      stem: 'adapter_model',
      config: first.config.raw,
      extras: adapterExtras(first, recipe, 'parameters'),
      initTensors: init ? init.names().map((name) => ({ source: init as TensorSource, name })) : undefined,
    },
    memoryEstimateBytes: estimateMemory(inputs.length, largest),
  };
}

/** The base of one adapter tensor: A₀/B₀ when recorded; for saved modules the base model's tensor; else zero. */
function expansionPoint(
  name: string,
  shape: number[],
  isSavedModule: boolean,
  init: AdapterSource['init'],
  base: ModelSource | undefined,
): TensorRead {
  if (init?.has(name)) {
    const initShape = init.info(name).shape;
    if (initShape.join() !== shape.join()) {
      throw new MergePlanError(
        'shape_mismatch',
        `${name} is [${initShape}] in the expansion point but [${shape}] in the adapters`,
        {
          tensor: name,
        },
      );
    }
    return { source: init as TensorSource, name };
  }
  if (isSavedModule && base) {
    const baseName = name.slice(PEFT_PREFIX.length);
    if (base.checkpoint.has(baseName) && base.checkpoint.info(baseName).shape.join() === shape.join()) {
      return { source: base.checkpoint as TensorSource, name: baseName };
    }
  }
  return { source: null, name };
}

function adapterExtras(first: OpenedAdapter, recipe: Recipe, space: string): Record<string, unknown> {
  return {
    ...(first.source.extras ?? {}),
    merge: {
      method: recipe.merge_method,
      space,
      inputs: recipe.models.map((m) => m.adapter),
      seed: recipe.seed ?? 0,
    },
  };
}

function planDeltaSpace(
  common: Omit<MergePlan, 'inputs' | 'tensors' | 'modules' | 'output' | 'memoryEstimateBytes' | 'deltaSpace'>,
  adapters: readonly OpenedAdapter[],
  resolveInputs: ResolveInput[],
  base: ModelSource | undefined,
): MergePlan {
  const { recipe, method } = common;
  const output = recipe.lora?.output ?? 'adapter';
  if (output === 'model' && !base) {
    throw new MergePlanError('missing_base_model', "lora output 'model' needs base_model", {
      parameter: 'base_model',
    });
  }
  const inputs: PlannedInput[] = adapters.map((a) => ({ ref: a.ref, isBase: false, kind: 'adapter' }));
  if (method.kind === 'tensor') checkInputCount(method, inputs, method.baseModel !== 'none');
  const modules: PlannedModule[] = [];
  let largest = 0;
  for (const first of adapters[0].layout.modules) {
    const layouts: AdapterModule[] = adapters.map(
      (a) => a.layout.modules.find((m) => m.module === first.module)!,
    );
    for (const layout of layouts) {
      if (
        layout.inFeatures !== first.inFeatures ||
        layout.outFeatures !== first.outFeatures ||
        layout.embedding !== first.embedding
      ) {
        throw new MergePlanError(
          'shape_mismatch',
          `LoRA module ${first.module} adapts [${layout.outFeatures}, ${layout.inFeatures}] in one adapter but [${first.outFeatures}, ${first.inFeatures}] in ${adapters[0].ref}`,
          { tensor: first.module },
        );
      }
    }
    const weightName = `${first.module}.weight`;
    const t = gradientPosition(weightName, common.layerCount);
    const { global, perModel } = resolveParameters(
      method,
      recipe,
      resolveInputs,
      weightName,
      t,
      first.inFeatures * first.outFeatures,
    );
    largest = Math.max(largest, first.inFeatures * first.outFeatures);
    modules.push({
      module: first.module,
      layouts,
      sources: adapters.map((a) => a.source.weights as TensorSource),
      t,
      global,
      perModel,
      // The base may spell the module the other transformers way (checked at plan time, so it resolves).
      baseWeight: base
        ? `${baseModuleName(first.module, base.checkpoint) ?? first.module}.weight`
        : undefined,
    });
  }
  const tensors: PlannedTensor[] = [];
  const outDtype = recipeOutputDtype(recipe);
  if (output === 'model' && base) {
    // The full model: every base tensor, with the adapted weights replaced at write time.
    for (const name of base.checkpoint.names()) {
      const info = base.checkpoint.info(name);
      largest = Math.max(largest, info.numel);
      const dtype = FLOAT_DTYPES.has(info.dtype) ? (outDtype ?? info.dtype) : info.dtype;
      tensors.push(copyTensor(name, info, dtype, base.checkpoint as TensorSource, 'from the base model'));
    }
  }
  // modules_to_save (whole tensors, e.g. a task head): a tensor method merges them as checkpoints, as
  // in parameter space, around the base model's tensor (or zero); PEFT's own methods define no merge
  // for them, so the first adapter's copy is kept (the plan says so).
  const mergeSaved = method.kind === 'tensor';
  const savedWithBase = mergeSaved && method.baseModel !== 'none';
  const savedResolveInputs = savedWithBase
    ? [...resolveInputs, { ref: 'expansion point', isBase: true }]
    : resolveInputs;
  if (savedWithBase && adapters[0].layout.savedModules.length > 0) {
    inputs.push({
      ref: 'expansion point (base model tensor or zero)',
      isBase: true,
      kind: 'expansion-point',
    });
  }
  const init = adapters.find((a) => a.source.init)?.source.init;
  for (const savedName of adapters[0].layout.savedModules) {
    const name = PEFT_PREFIX + savedName;
    const info = adapters[0].source.weights.info(name);
    const dtype = FLOAT_DTYPES.has(info.dtype) ? (outDtype ?? info.dtype) : info.dtype;
    const outName = output === 'model' ? savedName : name;
    const existing = tensors.findIndex((t) => t.name === outName);
    let planned: PlannedTensor;
    if (mergeSaved && FLOAT_DTYPES.has(info.dtype)) {
      for (const adapter of adapters) {
        const other = adapter.source.weights.has(name) ? adapter.source.weights.info(name) : undefined;
        if (!other || other.shape.join() !== info.shape.join()) {
          throw new MergePlanError(
            'shape_mismatch',
            `saved module ${savedName} is ${other ? shapeText(other) : 'missing'} in ${adapter.ref} but ${shapeText(info)} in ${adapters[0].ref}`,
            { tensor: savedName },
          );
        }
      }
      const reads: TensorRead[] = adapters.map((a) => ({ source: a.source.weights as TensorSource, name }));
      if (savedWithBase) reads.push(expansionPoint(name, info.shape, true, init, base));
      const t = gradientPosition(savedName, common.layerCount);
      const { global, perModel } = resolveParameters(method, recipe, savedResolveInputs, name, t, info.numel);
      planned = { name: outName, shape: info.shape, dtype, action: 'merge', reads, t, global, perModel };
    } else {
      planned = copyTensor(
        outName,
        info,
        dtype,
        adapters[0].source.weights as TensorSource,
        `saved module from ${adapters[0].ref}`,
        name,
      );
    }
    if (existing >= 0) tensors[existing] = planned;
    else tensors.push(planned);
  }
  return {
    ...common,
    inputs,
    tensors,
    modules,
    deltaSpace: { rank: recipe.lora?.rank ?? 'full', output },
    output:
      output === 'model'
        ? { kind: 'model', stem: 'model', config: base?.config }
        : {
            kind: 'adapter',
            stem: 'adapter_model',
            config: adapters[0].config.raw,
            extras: adapterExtras(adapters[0], recipe, 'delta'),
          },
    memoryEstimateBytes: estimateMemory(adapters.length * 2, largest),
  };
}
