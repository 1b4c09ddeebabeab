// The `search` block of POST /v1/merges: a grid over method parameters. Each point is a recipe of its own (the
// point's values set as global parameters, replacing any per-input value of the same name) merged and evaluated
// on validation by a child job; the parent selects by average normalized validation accuracy.
import { Type } from 'typebox';
import type { MergeSearch } from '../../../queue/index.ts';
import { ApiProblem } from '../../errors.ts';

/** More points than this is a sweep for a batch system, not one request. */
export const MAX_GRID_POINTS = 64;

export const MergeSearchBody = Type.Object(
  {
    grid: Type.Record(Type.String(), Type.Array(Type.Number(), { minItems: 1, maxItems: MAX_GRID_POINTS }), {
      description:
        'Method parameter → values, e.g. {lambda: [0.3, 0.5, 1], density: [0.2, 0.5]}; every combination is one point (at most 64).',
    }),
    keep: Type.Optional(
      Type.Union([Type.Literal('best'), Type.Literal('all')], {
        description: "'best' (default): only the chosen point's merged artifact stays; 'all': every point's.",
      }),
    ),
  },
  {
    additionalProperties: false,
    description:
      'Search the grid (needs evaluation): one child job per point, selection on validation by average normalized accuracy, test reported for the chosen point only.',
  },
);

function invalid(path: string, message: string): ApiProblem {
  return new ApiProblem('invalid-evaluation', `${path}: ${message}`, { path });
}

export function parseSearch(body: unknown): MergeSearch {
  if (typeof body !== 'object' || body === null || Array.isArray(body))
    throw invalid('search', 'must be an object {grid, keep?}');
  const { grid, keep, ...rest } = body as Record<string, unknown>;
  for (const key of Object.keys(rest)) throw invalid(`search.${key}`, 'unknown field (grid, keep)');
  if (keep !== undefined && keep !== 'best' && keep !== 'all')
    throw invalid('search.keep', "must be 'best' or 'all'");
  if (typeof grid !== 'object' || grid === null || Array.isArray(grid) || Object.keys(grid).length === 0) {
    throw invalid('search.grid', 'must map at least one parameter to its values');
  }
  const out: Record<string, number[]> = {};
  let points = 1;
  for (const [name, values] of Object.entries(grid)) {
    if (
      !Array.isArray(values) ||
      values.length === 0 ||
      !values.every((v) => typeof v === 'number' && Number.isFinite(v))
    ) {
      throw invalid(`search.grid.${name}`, 'must be a non-empty list of finite numbers');
    }
    if (new Set(values).size !== values.length) throw invalid(`search.grid.${name}`, 'lists a value twice');
    out[name] = values as number[];
    points *= values.length;
  }
  if (points > MAX_GRID_POINTS)
    throw invalid('search.grid', `has ${points} points; at most ${MAX_GRID_POINTS}`);
  return { grid: out, keep: keep ?? 'best' };
}

/** Every combination of the grid's values, the first parameter varying slowest. */
export function gridPoints(grid: Record<string, number[]>): Array<Record<string, number>> {
  let points: Array<Record<string, number>> = [{}];
  for (const [name, values] of Object.entries(grid)) {
    points = points.flatMap((point) => values.map((value) => ({ ...point, [name]: value })));
  }
  return points;
}

/** The recipe of one point: its values as global parameters, per-input values of those names removed. */
export function pointRecipe(
  recipe: Record<string, unknown>,
  params: Record<string, number>,
): Record<string, unknown> {
  const globals = { ...((recipe.parameters as Record<string, unknown> | undefined) ?? {}), ...params };
  const models = (recipe.models as Array<Record<string, unknown>>).map((input) => {
    const own = input.parameters as Record<string, unknown> | undefined;
    if (!own) return input;
    const kept = Object.fromEntries(Object.entries(own).filter(([name]) => !(name in params)));
    return { ...input, parameters: kept };
  });
  return { ...recipe, parameters: globals, models };
}
