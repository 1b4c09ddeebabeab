// `evaluation.disentanglement` of POST /v1/merges: which two tasks the report's weight-disentanglement heatmap
// ξ(λ₁, λ₂) is drawn for, over which λ grid and how many validation examples, checked before queueing. By
// default an evaluation of two or more tasks gets ξ of its first two tasks on a small grid (its cost is bounded:
// 2·n² forward passes of at most max_examples examples for an n-value grid holding 0); `false` turns it off.
import { Type } from 'typebox';
import type { Recipe } from '../../../merge/index.ts';
import type { EvaluationTask, MergeDisentanglement } from '../../../queue/index.ts';
import { ApiProblem } from '../../errors.ts';

/** linspace(−2, 2, 9): the paper's range at a step of 0.5, so a merge's report stays cheap (162 passes). */
export const MERGE_DISENTANGLEMENT_GRID = [-2, -1.5, -1, -0.5, 0, 0.5, 1, 1.5, 2];
export const MERGE_DISENTANGLEMENT_EXAMPLES = 64;
const MAX_GRID_VALUES = 21;
const MAX_EXAMPLES = 1024;

export const MergeDisentanglementBody = Type.Union(
  [
    Type.Literal(false),
    Type.Object(
      {
        tasks: Type.Optional(
          Type.Array(Type.String(), {
            minItems: 2,
            maxItems: 2,
            description: 'The two task names (default: the first two tasks).',
          }),
        ),
        grid: Type.Optional(
          Type.Array(Type.Number({ minimum: -100, maximum: 100 }), {
            minItems: 2,
            maxItems: MAX_GRID_VALUES,
            uniqueItems: true,
            description: `λ values for both axes (default [${MERGE_DISENTANGLEMENT_GRID.join(', ')}]).`,
          }),
        ),
        max_examples: Type.Optional(
          Type.Integer({
            minimum: 1,
            maximum: MAX_EXAMPLES,
            default: MERGE_DISENTANGLEMENT_EXAMPLES,
            description: "Examples per task: the first ones of the task's validation dataset.",
          }),
        ),
      },
      { additionalProperties: false },
    ),
  ],
  {
    description:
      "The report's weight-disentanglement heatmap ξ(λ₁, λ₂) = Σₜ the fraction of task t's validation examples where θ₀+λ₁τ₁+λ₂τ₂ and θ₀+λₜτₜ disagree, each task read through its head, computed as POST /v1/analyses does. Default with two or more tasks: the first two, the grid above and 64 examples (2·n² forward passes for an n-value grid holding 0); `false`: none. Needs a base model that is not an input and inputs all adapters or all models (else 422 when asked for, left out by default).",
  },
);

function invalid(path: string, message: string): ApiProblem {
  return new ApiProblem('invalid-evaluation', `${path}: ${message}`, { path });
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** Why ξ cannot be computed for this merge, or null when it can. */
function whyNot(recipe: Recipe, baseModel: string | null): string | null {
  const base = recipe.base_model ?? baseModel;
  if (!base) return 'it needs a base model (task vectors are θₜ − θ₀)';
  const ids = recipe.models.map((m) => m.adapter ?? m.model);
  if (ids.includes(base)) return 'the base model is also one of the inputs';
  const adapters = recipe.models.filter((m) => m.adapter !== undefined).length;
  if (adapters !== 0 && adapters !== recipe.models.length) return 'the inputs mix adapters and models';
  return null;
}

/** The disentanglement the job computes (null: none), from the request's `evaluation.disentanglement`. */
export function resolveDisentanglement(
  recipe: Recipe,
  tasks: EvaluationTask[],
  baseModel: string | null,
  body: unknown,
): MergeDisentanglement | null {
  const path = 'evaluation.disentanglement';
  if (body === false) return null;
  const defaults = { tasks: [0, 1] as [number, number], grid: MERGE_DISENTANGLEMENT_GRID };
  if (body === undefined) {
    if (tasks.length < 2 || whyNot(recipe, baseModel) !== null) return null;
    return { ...defaults, maxExamples: MERGE_DISENTANGLEMENT_EXAMPLES };
  }
  if (!isObject(body)) throw invalid(path, 'must be false or an object {tasks, grid, max_examples}');
  for (const key of Object.keys(body))
    if (!['tasks', 'grid', 'max_examples'].includes(key)) throw invalid(`${path}.${key}`, 'unknown field');
  if (tasks.length < 2) throw invalid(path, 'needs two tasks');
  const reason = whyNot(recipe, baseModel);
  if (reason) throw invalid(path, reason);
  let pair = defaults.tasks;
  if (body.tasks !== undefined) {
    const names = body.tasks;
    if (!Array.isArray(names) || names.length !== 2) throw invalid(`${path}.tasks`, 'must name two tasks');
    const indices = names.map((name, i) => {
      const index = tasks.findIndex((t) => t.name === name);
      if (index < 0) throw invalid(`${path}.tasks[${i}]`, `${String(name)} is not one of the tasks`);
      return index;
    });
    if (indices[0] === indices[1]) throw invalid(`${path}.tasks[1]`, 'must be another task than tasks[0]');
    pair = [indices[0], indices[1]];
  }
  let grid = defaults.grid;
  if (body.grid !== undefined) {
    const values = body.grid;
    if (
      !Array.isArray(values) ||
      values.length < 2 ||
      values.length > MAX_GRID_VALUES ||
      values.some((v) => typeof v !== 'number' || !Number.isFinite(v) || Math.abs(v) > 100) ||
      new Set(values).size !== values.length
    ) {
      throw invalid(`${path}.grid`, `must be 2 to ${MAX_GRID_VALUES} distinct numbers in [−100, 100]`);
    }
    grid = values as number[];
  }
  let maxExamples = MERGE_DISENTANGLEMENT_EXAMPLES;
  if (body.max_examples !== undefined) {
    const n = body.max_examples;
    if (typeof n !== 'number' || !Number.isInteger(n) || n < 1 || n > MAX_EXAMPLES)
      throw invalid(`${path}.max_examples`, `must be an integer from 1 to ${MAX_EXAMPLES}`);
    maxExamples = n;
  }
  return { tasks: pair, grid, maxExamples };
}
