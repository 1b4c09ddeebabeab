// mergekit's config format (merge_method, base_model, models[].parameters, parameters, dtype, ...)
// parsed into a checked Recipe. Structural checks only: the planner checks it against the registry.
import { parse as parseYaml } from 'yaml';
import { MAX_JSON_DEPTH, valueNestingDepth } from '../tensors/index.ts';
import { RecipeError } from './errors.ts';
import { parseSize } from './shard-size.ts';

/** What one recipe may hold; the API passes its configured caps, the CLI and workers the defaults. */
export interface RecipeLimits {
  /** Most entries under `models` (each is an input opened for every tensor). */
  maxModels: number;
  /** Largest recipe text (YAML or JSON), in characters. */
  maxTextLength: number;
  /** Deepest nesting of mappings and lists (a real recipe nests 5 levels). */
  maxDepth: number;
}

export const DEFAULT_RECIPE_LIMITS: RecipeLimits = {
  maxModels: 64,
  maxTextLength: 1024 * 1024,
  maxDepth: MAX_JSON_DEPTH,
};

/** A scalar or gradient a parameter may take (mergekit's ParameterSetting, without the conditional list). */
export type SettingValue = number | boolean | string | number[];

/** One entry of a filter list: the first entry whose filter matches the tensor name wins. */
export interface ConditionalSetting {
  filter?: string;
  value: SettingValue;
}

export type ParameterSetting = SettingValue | ConditionalSetting[];

export interface RecipeInput {
  model?: string;
  adapter?: string;
  parameters?: Record<string, ParameterSetting>;
}

export interface LoraOptions {
  space: 'parameters' | 'delta';
  rank?: number | 'full';
  output?: 'adapter' | 'model';
}

export interface Recipe {
  merge_method: string;
  base_model?: string;
  models: RecipeInput[];
  parameters?: Record<string, ParameterSetting>;
  dtype?: string;
  out_dtype?: string;
  seed?: number;
  lora?: LoraOptions;
  /** Largest output shard in bytes (mergekit's --max-shard-size); the CLI flag or the service's default otherwise. */
  max_shard_size?: number;
  /** What the parser ignored (e.g. tokenizer_source), for the plan's description. */
  notes?: string[];
}

/** mergekit's dtype names, and the safetensors names we also accept. */
export const RECIPE_DTYPES = [
  'float32',
  'float16',
  'bfloat16',
  'float64',
  'F32',
  'F16',
  'BF16',
  'F64',
  'float8_e4m3fn',
  'float8_e5m2',
  'F8_E4M3',
  'F8_E5M2',
] as const;

const TOP_LEVEL_KEYS = new Set([
  'merge_method',
  'base_model',
  'models',
  'parameters',
  'dtype',
  'out_dtype',
  'seed',
  'lora',
  'max_shard_size',
]);
// Accepted for mergekit compatibility and ignored: lorafuse keeps the base model's tokenizer files out of merges.
const IGNORED_KEYS = new Set(['tokenizer_source', 'tokenizer', 'chat_template', 'name']);

/** A byte count or a size text ("5GB", "2GiB"), as mergekit's --max-shard-size takes it. */
function checkShardSize(value: unknown): number {
  if (typeof value === 'number') {
    if (!Number.isSafeInteger(value) || value < 1)
      throw new RecipeError('invalid_value', 'max_shard_size', 'must be a positive whole number of bytes');
    return value;
  }
  if (typeof value !== 'string') {
    throw new RecipeError('invalid_type', 'max_shard_size', 'must be a byte count or a size such as "5GB"');
  }
  try {
    return parseSize(value);
  } catch (error) {
    throw new RecipeError('invalid_value', 'max_shard_size', (error as Error).message);
  }
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function checkString(value: unknown, path: string): string {
  if (typeof value !== 'string' || value.trim() === '') {
    throw new RecipeError('invalid_type', path, 'must be a non-empty string');
  }
  return value;
}

function checkScalarOrGradient(value: unknown, path: string): SettingValue {
  if (typeof value === 'number') {
    if (!Number.isFinite(value)) throw new RecipeError('invalid_value', path, 'must be a finite number');
    return value;
  }
  if (typeof value === 'boolean' || typeof value === 'string') return value;
  if (Array.isArray(value)) {
    if (value.length === 0)
      throw new RecipeError('invalid_value', path, 'a gradient needs at least one value');
    // An index loop, not forEach: a sparse array's holes must be refused, not skipped.
    for (let i = 0; i < value.length; i++) {
      const entry = value[i];
      if (typeof entry !== 'number' || !Number.isFinite(entry)) {
        throw new RecipeError('invalid_type', `${path}[${i}]`, 'gradient entries must be finite numbers');
      }
    }
    return value as number[];
  }
  throw new RecipeError('invalid_type', path, 'must be a number, boolean, string or a list of numbers');
}

function checkSetting(value: unknown, path: string): ParameterSetting {
  if (isPlainObject(value)) {
    // mergekit accepts this shape in pydantic and then fails in evaluate_setting with this message.
    throw new RecipeError(
      'unexpected_setting_value',
      path,
      'Unexpected setting value: a {filter, value} entry must be inside a list',
    );
  }
  if (Array.isArray(value) && value.length > 0 && value.some((entry) => isPlainObject(entry))) {
    // Array.from visits a sparse array's holes (as undefined) where map would skip them.
    return Array.from(value, (entry, i) => {
      const entryPath = `${path}[${i}]`;
      if (!isPlainObject(entry)) {
        throw new RecipeError('invalid_type', entryPath, 'a filter list holds only {filter, value} entries');
      }
      for (const key of Object.keys(entry)) {
        if (key !== 'filter' && key !== 'value') {
          throw new RecipeError(
            'unknown_field',
            `${entryPath}.${key}`,
            'a filter entry has only filter and value',
          );
        }
      }
      if (!('value' in entry)) throw new RecipeError('missing_field', `${entryPath}.value`, 'is required');
      const setting: ConditionalSetting = { value: checkScalarOrGradient(entry.value, `${entryPath}.value`) };
      if (entry.filter !== undefined && entry.filter !== null) {
        if (typeof entry.filter !== 'string') {
          throw new RecipeError('invalid_type', `${entryPath}.filter`, 'must be a string');
        }
        setting.filter = entry.filter;
      }
      return setting;
    });
  }
  return checkScalarOrGradient(value, path);
}

function checkParameters(value: unknown, path: string): Record<string, ParameterSetting> {
  if (!isPlainObject(value))
    throw new RecipeError('invalid_type', path, 'must be a mapping of parameter names');
  const out: Record<string, ParameterSetting> = {};
  for (const [name, setting] of Object.entries(value)) {
    if (setting === null || setting === undefined) continue; // YAML `key:` with no value: absent, as in mergekit
    out[name] = checkSetting(setting, `${path}.${name}`);
  }
  return out;
}

function checkLora(value: unknown): LoraOptions {
  if (!isPlainObject(value)) throw new RecipeError('invalid_type', 'lora', 'must be a mapping');
  for (const key of Object.keys(value)) {
    if (!['space', 'rank', 'output'].includes(key)) {
      throw new RecipeError('unknown_field', `lora.${key}`, 'unknown field (space, rank, output)');
    }
  }
  const space = value.space ?? 'parameters';
  if (space !== 'parameters' && space !== 'delta') {
    throw new RecipeError('invalid_value', 'lora.space', "must be 'parameters' or 'delta'");
  }
  const lora: LoraOptions = { space };
  if (value.rank !== undefined) {
    const rank = value.rank;
    if (rank !== 'full' && !(typeof rank === 'number' && Number.isSafeInteger(rank) && rank > 0)) {
      throw new RecipeError('invalid_value', 'lora.rank', "must be a positive integer or 'full'");
    }
    if (space !== 'delta')
      throw new RecipeError('invalid_value', 'lora.rank', "applies only to space 'delta'");
    lora.rank = rank;
  }
  if (value.output !== undefined) {
    if (value.output !== 'adapter' && value.output !== 'model') {
      throw new RecipeError('invalid_value', 'lora.output', "must be 'adapter' or 'model'");
    }
    if (value.output === 'model' && space !== 'delta') {
      throw new RecipeError('invalid_value', 'lora.output', "'model' output needs space 'delta'");
    }
    lora.output = value.output;
  }
  return lora;
}

function checkDtype(value: unknown, path: string): string {
  if (typeof value !== 'string' || !(RECIPE_DTYPES as readonly string[]).includes(value)) {
    throw new RecipeError('invalid_value', path, `must be one of ${RECIPE_DTYPES.join(', ')}`);
  }
  return value;
}

/** Parses a mergekit-format recipe (YAML or JSON text, or an already parsed object). */
export function parseRecipe(
  input: string | Record<string, unknown>,
  limitsIn: Partial<RecipeLimits> = {},
): Recipe {
  const limits = { ...DEFAULT_RECIPE_LIMITS, ...limitsIn };
  let root: unknown = input;
  if (typeof input === 'string') {
    if (input.length > limits.maxTextLength) {
      throw new RecipeError(
        'too_large',
        '',
        `a recipe of ${input.length} characters is over the ${limits.maxTextLength} limit`,
      );
    }
    try {
      // maxAliasCount bounds YAML's "billion laughs"; nesting is checked on the result below.
      root = parseYaml(input, { maxAliasCount: 100 });
    } catch (error) {
      throw new RecipeError('invalid_yaml', '', `not valid YAML: ${(error as Error).message}`);
    }
  }
  if (valueNestingDepth(root, limits.maxDepth) > limits.maxDepth) {
    throw new RecipeError('too_deep', '', `a recipe nested deeper than ${limits.maxDepth} levels`);
  }
  if (!isPlainObject(root)) throw new RecipeError('invalid_type', '', 'a recipe is a mapping');
  const notes: string[] = [];
  for (const key of Object.keys(root)) {
    if (IGNORED_KEYS.has(key)) {
      notes.push(`${key} is ignored: lorafuse writes tensors and config.json only`);
    } else if (key === 'slices') {
      throw new RecipeError(
        'unsupported',
        'slices',
        'slices are not supported; list the inputs under models',
      );
    } else if (!TOP_LEVEL_KEYS.has(key)) {
      throw new RecipeError('unknown_field', key, 'unknown field');
    }
  }
  const recipe: Recipe = {
    merge_method: checkString(root.merge_method, 'merge_method'),
    models: [],
  };
  if (root.base_model !== undefined && root.base_model !== null) {
    recipe.base_model = checkString(root.base_model, 'base_model');
  }
  if (!Array.isArray(root.models) || root.models.length === 0) {
    throw new RecipeError('missing_field', 'models', 'must be a non-empty list of inputs');
  }
  if (root.models.length > limits.maxModels) {
    throw new RecipeError(
      'too_many_models',
      'models',
      `${root.models.length} inputs is over the limit of ${limits.maxModels} per recipe`,
    );
  }
  recipe.models = Array.from(root.models as unknown[], (entry, i) => {
    const path = `models[${i}]`;
    if (!isPlainObject(entry)) throw new RecipeError('invalid_type', path, 'must be a mapping');
    for (const key of Object.keys(entry)) {
      if (!['model', 'adapter', 'parameters'].includes(key)) {
        throw new RecipeError(
          'unknown_field',
          `${path}.${key}`,
          'unknown field (model, adapter, parameters)',
        );
      }
    }
    const hasModel = entry.model !== undefined && entry.model !== null;
    const hasAdapter = entry.adapter !== undefined && entry.adapter !== null;
    if (hasModel === hasAdapter) {
      throw new RecipeError('invalid_value', path, 'needs exactly one of model or adapter');
    }
    const input: RecipeInput = hasModel
      ? { model: checkString(entry.model, `${path}.model`) }
      : { adapter: checkString(entry.adapter, `${path}.adapter`) };
    if (entry.parameters !== undefined && entry.parameters !== null) {
      input.parameters = checkParameters(entry.parameters, `${path}.parameters`);
    }
    return input;
  });
  const adapters = recipe.models.filter((m) => m.adapter !== undefined).length;
  if (adapters > 0 && adapters < recipe.models.length) {
    throw new RecipeError('invalid_value', 'models', 'mixes models and adapters: list only one kind');
  }
  if (root.parameters !== undefined && root.parameters !== null) {
    recipe.parameters = checkParameters(root.parameters, 'parameters');
  }
  if (root.dtype !== undefined && root.dtype !== null) recipe.dtype = checkDtype(root.dtype, 'dtype');
  if (root.out_dtype !== undefined && root.out_dtype !== null) {
    recipe.out_dtype = checkDtype(root.out_dtype, 'out_dtype');
  }
  if (root.seed !== undefined && root.seed !== null) {
    if (typeof root.seed !== 'number' || !Number.isSafeInteger(root.seed) || root.seed < 0) {
      throw new RecipeError('invalid_value', 'seed', 'must be a non-negative integer');
    }
    recipe.seed = root.seed;
  }
  if (root.max_shard_size !== undefined && root.max_shard_size !== null) {
    recipe.max_shard_size = checkShardSize(root.max_shard_size);
  }
  if (root.lora !== undefined && root.lora !== null) {
    if (adapters === 0)
      throw new RecipeError('invalid_value', 'lora', 'applies only when the inputs are adapters');
    recipe.lora = checkLora(root.lora);
  }
  if (notes.length > 0) recipe.notes = notes;
  return recipe;
}

/** Every model/adapter reference in a recipe (base included), each once, in recipe order. */
export function recipeReferences(recipe: Recipe): { models: string[]; adapters: string[] } {
  const models = new Set<string>();
  const adapters = new Set<string>();
  for (const input of recipe.models) {
    if (input.model !== undefined) models.add(input.model);
    if (input.adapter !== undefined) adapters.add(input.adapter);
  }
  if (recipe.base_model !== undefined) models.add(recipe.base_model);
  return { models: [...models], adapters: [...adapters] };
}
