// Declared parameter ranges and the one boolean rule, checked against a recipe before anything is
// opened: every scalar, gradient entry and filter-list value a recipe sets for a method's parameter,
// per model and at the top level, so an out-of-range value is a 422 naming the model and parameter
// (never a job that fails in the worker or silently merges nothing).
import { MergePlanError } from './errors.ts';
import type { MergeMethod, ParameterRange, ParameterSpec, ParameterValue } from './method.ts';
import type { ParameterSetting, Recipe, SettingValue } from './recipe.ts';

/** A range as intervals are written: `(0, 1]`, `[1, ∞)`. */
export function describeRange(range: ParameterRange): string {
  const low = range.min === undefined ? '(−∞' : `${range.minExclusive ? '(' : '['}${range.min}`;
  const high = range.max === undefined ? '∞)' : `${range.max}${range.maxExclusive ? ')' : ']'}`;
  return `${low}, ${high}`;
}

export function inRange(value: number, range: ParameterRange): boolean {
  if (range.min !== undefined && (range.minExclusive ? value <= range.min : value < range.min)) return false;
  if (range.max !== undefined && (range.maxExclusive ? value >= range.max : value > range.max)) return false;
  return true;
}

/**
 * The one boolean rule: `true`/`false`, or 1/0 (pydantic hands mergekit's methods `true` as 1.0).
 * Anything else (2, 0.5 from a gradient, the string "true") is refused rather than guessed at.
 */
export function isBooleanValue(value: unknown): value is boolean | 0 | 1 {
  return value === true || value === false || value === 0 || value === 1;
}

/** True for `true` and 1: how every method reads a boolean parameter. */
export function isTrue(value: ParameterValue | undefined): boolean {
  return value === true || value === 1;
}

/** Why `value` does not fit `spec` (type, enum or range), or undefined when it does. */
export function parameterValueProblem(spec: ParameterSpec, value: ParameterValue): string | undefined {
  switch (spec.type) {
    case 'boolean':
      return isBooleanValue(value) ? undefined : 'must be a boolean (true or false; 1 or 0)';
    case 'string':
      if (typeof value !== 'string') return 'must be a string';
      if (spec.enum && !spec.enum.includes(value)) return `must be one of ${spec.enum.join(', ')}`;
      return undefined;
    case 'number':
    case 'integer':
      if (typeof value !== 'number')
        return spec.type === 'number' ? 'must be a number' : 'must be an integer';
      if (spec.type === 'integer' && !Number.isInteger(value)) return 'must be an integer';
      if (spec.range && !inRange(value, spec.range)) return `must be in ${describeRange(spec.range)}`;
      return undefined;
  }
}

/** The values one setting can take: its scalar, each gradient entry, each filter entry's values. */
function settingValues(
  setting: ParameterSetting,
  path: string,
): Array<{ value: ParameterValue; path: string }> {
  const out: Array<{ value: ParameterValue; path: string }> = [];
  const add = (value: SettingValue, at: string) => {
    if (!Array.isArray(value)) {
      out.push({ value, path: at });
      return;
    }
    for (const [i, entry] of value.entries()) out.push({ value: entry, path: `${at}[${i}]` });
  };
  if (Array.isArray(setting) && setting.length > 0 && typeof setting[0] === 'object') {
    for (const [i, entry] of (setting as Array<{ value: SettingValue }>).entries()) {
      add(entry.value, `${path}[${i}].value`);
    }
  } else {
    add(setting as SettingValue, path);
  }
  return out;
}

function checkSetting(spec: ParameterSpec, setting: ParameterSetting, path: string, model?: string): void {
  for (const { value, path: at } of settingValues(setting, path)) {
    const problem = parameterValueProblem(spec, value);
    if (problem === undefined) continue;
    const owner = model === undefined ? '' : ` of ${model}`;
    throw new MergePlanError(
      'invalid_parameter',
      `parameter ${spec.name}${owner} (${at}) ${problem}, got ${JSON.stringify(value)}`,
      { parameter: spec.name, model, path: at },
    );
  }
}

/**
 * Checks every value the recipe sets for a parameter `method` declares, whichever tensors it would
 * reach. Undeclared names are left to unusedParameterNames (they are warnings, as in mergekit).
 */
export function checkRecipeParameters(method: MergeMethod, recipe: Recipe): void {
  const specs = new Map(method.parameters.map((spec) => [spec.name, spec]));
  for (const [name, setting] of Object.entries(recipe.parameters ?? {})) {
    const spec = specs.get(name);
    if (spec) checkSetting(spec, setting, `parameters.${name}`);
  }
  recipe.models.forEach((input, i) => {
    const model = input.model ?? input.adapter;
    for (const [name, setting] of Object.entries(input.parameters ?? {})) {
      const spec = specs.get(name);
      if (spec && spec.scope === 'per-model') {
        checkSetting(spec, setting, `models[${i}].parameters.${name}`, model);
      }
    }
  });
}
