// Parameter resolution exactly as mergekit's config.py: evaluate_setting at the tensor's t, per-model
// values first, then the top level, then the method default; global parameters from the top level only.
import { MergePlanError } from './errors.ts';
import type { MergeMethod, ParameterSpec, ParameterValue } from './method.ts';
import { parameterValueProblem } from './parameter-ranges.ts';
import type { ParameterSetting, Recipe, SettingValue } from './recipe.ts';

/** A gradient at t, in float64 and in mergekit's order of operations so the bits match. */
export function interpolateGradient(values: readonly number[], t: number): number {
  const scaled = t * (values.length - 1);
  const i0 = Math.trunc(scaled);
  const i1 = Math.min(values.length - 1, i0 + 1);
  const frac = scaled - i0;
  return (1 - frac) * values[i0] + frac * values[i1];
}

function evaluateValue(value: SettingValue, t: number): ParameterValue {
  if (Array.isArray(value)) return interpolateGradient(value, t);
  // pydantic's ParameterSetting union has no bool: `true` reaches the method as 1.0.
  if (typeof value === 'boolean') return value ? 1 : 0;
  return value;
}

/** mergekit's evaluate_setting: undefined when a filter list has no matching entry. */
export function evaluateSetting(
  tensorName: string,
  setting: ParameterSetting,
  t: number,
): ParameterValue | undefined {
  if (Array.isArray(setting) && setting.length > 0 && typeof setting[0] === 'object') {
    for (const entry of setting as Array<{ filter?: string; value: SettingValue }>) {
      // A plain substring test; only the exact string "*" is a wildcard (no globbing).
      if (entry.filter === undefined || entry.filter === '*' || tensorName.includes(entry.filter)) {
        return evaluateValue(entry.value, t);
      }
    }
    return undefined;
  }
  return evaluateValue(setting as SettingValue, t);
}

function checkType(
  spec: ParameterSpec,
  value: ParameterValue,
  tensorName: string,
  model: string | undefined,
): ParameterValue {
  const problem = parameterValueProblem(spec, value);
  if (problem === undefined) return value;
  const owner = model === undefined ? '' : ` of ${model}`;
  throw new MergePlanError(
    'invalid_parameter',
    `parameter ${spec.name}${owner} for ${tensorName} ${problem}, got ${JSON.stringify(value)}`,
    { tensor: tensorName, parameter: spec.name, model },
  );
}

export interface ResolvedParameters {
  global: Record<string, ParameterValue>;
  /** One entry per input, in input order; the base's missing required values are left out. */
  perModel: Array<Record<string, ParameterValue>>;
}

export interface ResolveInput {
  /** The reference as written in the recipe. */
  ref: string;
  isBase: boolean;
  /** models[i].parameters, or undefined for an unlisted base model. */
  parameters?: Record<string, ParameterSetting>;
}

/**
 * Resolves every declared parameter of `method` for one tensor at gradient position t, each checked
 * against its declared type and range; with `numel`, the method's cross-parameter rule too.
 */
export function resolveParameters(
  method: MergeMethod,
  recipe: Recipe,
  inputs: readonly ResolveInput[],
  tensorName: string,
  t: number,
  numel?: number,
): ResolvedParameters {
  const top = recipe.parameters ?? {};
  const fromTop = (name: string) => (name in top ? evaluateSetting(tensorName, top[name], t) : undefined);
  const global: Record<string, ParameterValue> = {};
  const perModel: Array<Record<string, ParameterValue>> = inputs.map(() => ({}));
  for (const spec of method.parameters) {
    if (spec.scope === 'global') {
      const value = fromTop(spec.name) ?? spec.default;
      if (value === undefined) {
        if (spec.required) {
          throw new MergePlanError('missing_parameter', `Missing required parameter ${spec.name}`, {
            tensor: tensorName,
            parameter: spec.name,
          });
        }
        continue;
      }
      global[spec.name] = checkType(spec, value, tensorName, undefined);
      continue;
    }
    inputs.forEach((input, i) => {
      const own = input.parameters;
      let value = own && spec.name in own ? evaluateSetting(tensorName, own[spec.name], t) : undefined;
      value = value ?? fromTop(spec.name) ?? spec.default;
      if (value === undefined) {
        if (spec.required && !input.isBase) {
          throw new MergePlanError(
            'missing_parameter',
            `Missing required parameter ${spec.name} for ${input.ref} (tensor ${tensorName})`,
            { tensor: tensorName, parameter: spec.name, model: input.ref },
          );
        }
        return;
      }
      perModel[i][spec.name] = checkType(spec, value, tensorName, input.ref);
    });
  }
  if (numel !== undefined && method.checkParameters) {
    const violation = method.checkParameters({
      tensorName,
      numel,
      global,
      models: inputs.map((input, i) => ({ model: input.ref, isBase: input.isBase, params: perModel[i] })),
    });
    if (violation) {
      throw new MergePlanError(
        'invalid_parameter',
        `${violation.message} (tensor ${tensorName}${violation.model ? `, model ${violation.model}` : ''})`,
        { tensor: tensorName, parameter: violation.parameter, model: violation.model },
      );
    }
  }
  return { global, perModel };
}

/** Parameter names the recipe sets that the method does not declare (mergekit ignores them; we say so). */
export function unusedParameterNames(method: MergeMethod, recipe: Recipe): string[] {
  const declared = new Map(method.parameters.map((spec) => [spec.name, spec.scope]));
  const unused = new Set<string>();
  for (const name of Object.keys(recipe.parameters ?? {})) {
    if (!declared.has(name)) unused.add(`parameters.${name}`);
  }
  recipe.models.forEach((input, i) => {
    for (const name of Object.keys(input.parameters ?? {})) {
      const scope = declared.get(name);
      if (scope === undefined) unused.add(`models[${i}].parameters.${name} (unknown to ${method.name})`);
      else if (scope === 'global')
        unused.add(`models[${i}].parameters.${name} (global: set it at the top level)`);
    }
  });
  return [...unused];
}
