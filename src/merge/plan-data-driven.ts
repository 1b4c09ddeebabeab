// Checks a recipe for a data-driven method (LoraHub, AdaMerging, Fisher, RegMean) without running it: the
// input kind against the method's declaration, base_model, the number of inputs and tasks, parameters
// (types and declared ranges), and that the inputs fit together (tensor names and shapes, or LoRA modules,
// ranks and scalings). The math runs in src/eval/data-driven, with the model runtime and the tasks' data.
import { MergePlanError } from './errors.ts';
import { checkAdapterAgainstBase } from './lora/adapter.ts';
import type { DataDrivenMergeMethod, ParameterValue } from './method.ts';
import { type ResolveInput, resolveParameters, unusedParameterNames } from './parameters.ts';
import { checkSameModules, openAdapters } from './plan-adapter.ts';
import { lookupMethod, openModels, shapeText } from './plan-common.ts';
import type { MergePlan } from './plan-types.ts';
import type { Recipe } from './recipe.ts';
import type { InputResolver, TensorSource } from './sources.ts';

/** The checked recipe of a data-driven merge: what src/eval/data-driven needs besides the files and data. */
export interface DataDrivenPlan {
  method: DataDrivenMergeMethod;
  inputKind: 'models' | 'adapters';
  /** The inputs as written in the recipe, in recipe order (task i reads input i). */
  inputs: string[];
  base?: string;
  /** Global parameters with defaults filled in. */
  global: Record<string, ParameterValue>;
  /** Per-model parameters, one entry per input. */
  perModel: Array<Record<string, ParameterValue>>;
  /** What the output artifact is. */
  output: 'model' | 'adapter';
  warnings: string[];
}

/** The error `lorafuse merge` (a recipe without data) and a request without tasks both get. */
export function needsTaskData(methodName: string): MergePlanError {
  return new MergePlanError(
    'needs_task_data',
    `${methodName} is a data-driven method: it reads each task's validation split, which a recipe alone does ` +
      `not give. Run it through POST /v1/merges with evaluation.tasks (one task per input, in recipe order)`,
    { parameter: 'merge_method' },
  );
}

/** The parameter name a data-driven recipe uses for the gradient position: parameters are one value each. */
const WHOLE_MODEL = '(whole model)';

function checkScalarSettings(recipe: Recipe, method: DataDrivenMergeMethod): void {
  const settings = [
    ...Object.entries(recipe.parameters ?? {}).map(([name, value]) => [`parameters.${name}`, value] as const),
    ...recipe.models.flatMap((input, i) =>
      Object.entries(input.parameters ?? {}).map(
        ([name, value]) => [`models[${i}].parameters.${name}`, value] as const,
      ),
    ),
  ];
  for (const [path, value] of settings) {
    if (Array.isArray(value)) {
      throw new MergePlanError(
        'invalid_parameter',
        `${path}: ${method.name} takes one value per parameter, not a gradient or filter list`,
        { parameter: path },
      );
    }
  }
}

/**
 * Plans (checks) a data-driven merge; `taskCount`, when given, must equal the number of inputs. Opens only
 * headers and closes everything it opened.
 */
export async function planDataDrivenMerge(
  recipe: Recipe,
  resolver: InputResolver,
  taskCount?: number,
): Promise<DataDrivenPlan> {
  const method = lookupMethod(recipe);
  if (method.kind !== 'data-driven') {
    throw new MergePlanError('not_data_driven', `${method.name} is not a data-driven method`, {
      parameter: 'merge_method',
    });
  }
  const inputKind = recipe.models[0].adapter !== undefined ? 'adapters' : 'models';
  const inputs = recipe.models.map((input) => (input.adapter ?? input.model)!);
  checkInputKind(method, recipe, inputKind);
  if (inputs.length < method.minModels) {
    throw new MergePlanError(
      'too_few_models',
      `${method.name} needs at least ${method.minModels} inputs, the recipe has ${inputs.length}`,
      { parameter: 'models' },
    );
  }
  if (taskCount !== undefined && taskCount !== inputs.length) {
    throw new MergePlanError(
      'task_count_mismatch',
      `${method.name} reads task i's data for input i: evaluation.tasks has ${taskCount} tasks, the recipe ${inputs.length} inputs`,
      { parameter: 'evaluation.tasks' },
    );
  }
  checkScalarSettings(recipe, method);
  const resolveInputs: ResolveInput[] = inputs.map((ref, i) => ({
    ref,
    isBase: false,
    parameters: recipe.models[i].parameters,
  }));
  const { global, perModel } = resolveParameters(method, recipe, resolveInputs, WHOLE_MODEL, 0);
  const warnings = [
    ...(recipe.notes ?? []),
    ...unusedParameterNames(method, recipe).map((p) => `${p} is ignored`),
  ];
  if (recipe.dtype !== undefined || recipe.out_dtype !== undefined) {
    warnings.push(`${method.name} computes and writes float32: dtype and out_dtype are ignored`);
  }
  const opened: MergePlan['opened'] = [];
  try {
    if (inputKind === 'models') await checkModels(recipe, inputs, resolver, opened);
    else await checkAdapters(recipe, method, resolver, opened);
  } finally {
    await Promise.allSettled(opened.map((o) => o.close()));
  }
  const adapterSupport = method.inputs.adapters;
  return {
    method,
    inputKind,
    inputs,
    base: recipe.base_model,
    global,
    perModel,
    output: inputKind === 'models' || !adapterSupport ? 'model' : adapterSupport.output,
    warnings,
  };
}

function checkInputKind(
  method: DataDrivenMergeMethod,
  recipe: Recipe,
  inputKind: 'models' | 'adapters',
): void {
  if (inputKind === 'models') {
    if (!method.inputs.models) {
      throw new MergePlanError(
        'wrong_input_kind',
        `${method.name} merges LoRA adapters: list adapter inputs`,
        {
          parameter: 'models',
        },
      );
    }
    const use = method.baseModel.models;
    if (use === 'required' && recipe.base_model === undefined) {
      throw new MergePlanError(
        'missing_base_model',
        `${method.name} combines task vectors θᵢ − θ₀: it needs base_model`,
        { parameter: 'base_model' },
      );
    }
    if (use === 'none' && recipe.base_model !== undefined) {
      throw new MergePlanError(
        'unused_base_model',
        `${method.name} merges the fine-tuned models' own weights and does not use base_model: remove it`,
        { parameter: 'base_model' },
      );
    }
    if (recipe.base_model !== undefined && recipe.models.some((m) => m.model === recipe.base_model)) {
      throw new MergePlanError(
        'base_listed',
        `${recipe.base_model} is base_model (θ₀): list only the fine-tuned models under models`,
        { parameter: 'models' },
      );
    }
    return;
  }
  const support = method.inputs.adapters;
  if (!support) {
    throw new MergePlanError('wrong_input_kind', `${method.name} merges full models: list model inputs`, {
      parameter: 'models',
    });
  }
  if (recipe.base_model === undefined) {
    throw new MergePlanError(
      'missing_base_model',
      `${method.name} runs the adapters on their base model: set base_model`,
      { parameter: 'base_model' },
    );
  }
  const lora = recipe.lora;
  if (lora && (lora.space !== support.space || lora.rank !== undefined)) {
    throw new MergePlanError(
      'unsupported_lora_space',
      `${method.name} merges adapters in ${support.space} space and writes ${support.output === 'adapter' ? 'an adapter' : 'a model'}; ` +
        'remove the lora block (or set only that space)',
      { parameter: 'lora' },
    );
  }
  if (lora?.output !== undefined && lora.output !== support.output) {
    throw new MergePlanError(
      'unsupported_lora_space',
      `${method.name} writes ${support.output === 'adapter' ? 'an adapter' : 'a model'} from adapters, not lora.output ${lora.output}`,
      { parameter: 'lora.output' },
    );
  }
}

/** Every input (and the base) must hold the same float tensors with the same shapes. */
async function checkModels(
  recipe: Recipe,
  inputs: readonly string[],
  resolver: InputResolver,
  opened: MergePlan['opened'],
): Promise<void> {
  const refs = recipe.base_model === undefined ? [...inputs] : [recipe.base_model, ...inputs];
  const sources = await openModels(refs, resolver, opened);
  const reference = sources.get(refs[0])!;
  if (!reference.config) {
    throw new MergePlanError(
      'model_not_runnable',
      `${refs[0]} has no config.json: a data-driven merge runs the model, so it needs one`,
    );
  }
  const first: TensorSource = reference.checkpoint;
  for (const ref of refs.slice(1)) {
    const other: TensorSource = sources.get(ref)!.checkpoint;
    for (const name of new Set([...first.names(), ...other.names()])) {
      if (!first.has(name) || !other.has(name)) {
        const [has, lacks] = first.has(name) ? [refs[0], ref] : [ref, refs[0]];
        throw new MergePlanError('missing_tensor', `tensor ${name} is in ${has} but not in ${lacks}`, {
          tensor: name,
        });
      }
      const a = first.info(name);
      const b = other.info(name);
      if (a.shape.length !== b.shape.length || a.shape.some((d, k) => d !== b.shape[k])) {
        throw new MergePlanError(
          'shape_mismatch',
          `tensor ${name} has shape ${shapeText(b)} in ${ref} but ${shapeText(a)} in ${refs[0]}`,
          { tensor: name },
        );
      }
    }
  }
}

/** Same modules in every adapter, each fitting the base; parameter space also needs equal ranks and scalings. */
async function checkAdapters(
  recipe: Recipe,
  method: DataDrivenMergeMethod,
  resolver: InputResolver,
  opened: MergePlan['opened'],
): Promise<void> {
  const adapters = await openAdapters(
    recipe.models.map((input) => input.adapter!),
    resolver,
    opened,
  );
  checkSameModules(adapters);
  const base = (await openModels([recipe.base_model!], resolver, opened)).get(recipe.base_model!)!;
  if (!base.config) {
    throw new MergePlanError(
      'model_not_runnable',
      `${recipe.base_model} has no config.json: a data-driven merge runs the model, so it needs one`,
      { parameter: 'base_model' },
    );
  }
  for (const adapter of adapters) {
    try {
      checkAdapterAgainstBase(adapter.layout, base.checkpoint);
    } catch (error) {
      throw new MergePlanError(
        'adapter_base_mismatch',
        `adapter ${adapter.ref}: ${(error as Error).message}`,
      );
    }
    for (const module of adapter.layout.modules) {
      if (module.embedding || module.fanInFanOut) {
        throw new MergePlanError(
          'unsupported_module',
          `adapter ${adapter.ref}: ${module.module} is an embedding or Conv1D LoRA module, which the runtime does not run`,
          { tensor: module.module },
        );
      }
    }
  }
  const support = method.inputs.adapters;
  if (support && support.space === 'parameters') {
    const first = adapters[0];
    for (const other of adapters.slice(1)) {
      for (const module of first.layout.modules) {
        const theirs = other.layout.modules.find((m) => m.module === module.module)!;
        if (theirs.rank !== module.rank || Math.abs(theirs.scaling - module.scaling) > 1e-12) {
          throw new MergePlanError(
            'lora_scaling_mismatch',
            `${method.name} combines lora_A and lora_B directly: ${module.module} has rank ${theirs.rank}, scaling ${theirs.scaling} in ${other.ref} but rank ${module.rank}, scaling ${module.scaling} in ${first.ref}`,
            { tensor: module.module },
          );
        }
      }
    }
  }
}
