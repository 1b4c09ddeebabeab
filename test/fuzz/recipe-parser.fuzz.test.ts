// Fuzz (fast-check) of the recipe parser: random mutations of valid recipes (values replaced by
// arbitrary JSON, keys dropped or added, deep nesting, YAML text edited character by character)
// never crash it: every run ends in a RecipeError, or in a Recipe whose parameters then either pass
// the registry's range check or fail it with a MergePlanError. Bounded runs.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { stringify } from 'yaml';
import {
  checkRecipeParameters,
  getMethod,
  MergePlanError,
  parseRecipe,
  RecipeError,
} from '../../src/merge/index.ts';

const VALID: Record<string, unknown>[] = [
  {
    merge_method: 'ties',
    base_model: 'base',
    models: [
      { model: 'a', parameters: { weight: 1, density: [0.2, 0.8] } },
      { model: 'b', parameters: { weight: [{ filter: 'mlp', value: 0.5 }, { value: 1 }], density: 0.5 } },
    ],
    parameters: { normalize: true, lambda: 0.9 },
    dtype: 'bfloat16',
    seed: 3,
  },
  {
    merge_method: 'peft_ties_svd',
    models: [
      { adapter: 'x', parameters: { weight: 1 } },
      { adapter: 'y', parameters: { weight: -0.5 } },
    ],
    parameters: { density: 0.3, svd_rank: 4, majority_sign_method: 'frequency' },
  },
  {
    merge_method: 'task_arithmetic',
    base_model: 'base',
    models: [
      { adapter: 'x', parameters: { weight: 1 } },
      { adapter: 'y', parameters: { weight: 1 } },
    ],
    lora: { space: 'delta', rank: 8, output: 'adapter' },
  },
];

/** Every path (list of keys and indexes) into a value. */
function paths(value: unknown, prefix: Array<string | number> = []): Array<Array<string | number>> {
  const out = [prefix];
  if (Array.isArray(value)) {
    for (const [i, item] of value.entries()) out.push(...paths(item, [...prefix, i]));
  } else if (value !== null && typeof value === 'object')
    for (const [key, item] of Object.entries(value)) out.push(...paths(item, [...prefix, key]));
  return out;
}

function setAt(root: unknown, path: Array<string | number>, value: unknown): unknown {
  if (path.length === 0) return value;
  const copy = structuredClone(root) as Record<string | number, unknown>;
  let node = copy;
  for (const key of path.slice(0, -1)) node = node[key] as Record<string | number, unknown>;
  const last = path[path.length - 1];
  if (value === undefined) delete node[last];
  else node[last] = value;
  return copy;
}

/** The only outcomes allowed: a typed refusal, or a recipe the registry can judge. */
function judge(parse: () => ReturnType<typeof parseRecipe>): 'recipe' | 'refused' {
  let recipe: ReturnType<typeof parseRecipe>;
  try {
    recipe = parse();
  } catch (error) {
    if (error instanceof RecipeError) return 'refused';
    throw error;
  }
  assert.equal(typeof recipe.merge_method, 'string');
  assert.ok(Array.isArray(recipe.models) && recipe.models.length > 0);
  const method = getMethod(recipe.merge_method);
  if (method) {
    try {
      checkRecipeParameters(method, recipe);
    } catch (error) {
      if (!(error instanceof MergePlanError)) throw error;
    }
  }
  return 'recipe';
}

// Past the 64-level limit but shallow enough for this file's own recursive helpers (5,000 levels: below).
const deepValue = fc.integer({ min: 1, max: 150 }).map((depth) => {
  let value: unknown = 1;
  for (let i = 0; i < depth; i++) value = i % 2 ? { a: value } : [value];
  return value;
});

const replacement = fc.oneof(
  fc.anything({ maxDepth: 3 }),
  fc.constantFrom(
    undefined,
    null,
    Number.NaN,
    Number.POSITIVE_INFINITY,
    -1,
    0,
    1e308,
    '',
    '__proto__',
    [],
    {},
  ),
  deepValue,
);

test('object recipes with a value replaced, removed or deeply nested: RecipeError or a judged recipe', () => {
  const outcomes = { recipe: 0, refused: 0 };
  fc.assert(
    fc.property(
      fc.constantFrom(...VALID),
      fc.array(fc.tuple(fc.nat(), replacement), { minLength: 1, maxLength: 3 }),
      (base, edits) => {
        let recipe: unknown = base;
        for (const [which, value] of edits) {
          const all = paths(recipe);
          recipe = setAt(recipe, all[which % all.length], value);
        }
        const input =
          recipe !== null && typeof recipe === 'object' && !Array.isArray(recipe)
            ? (recipe as Record<string, unknown>)
            : { recipe };
        outcomes[judge(() => parseRecipe(input))]++;
      },
    ),
    { numRuns: 500 },
  );
  assert.ok(outcomes.recipe > 0 && outcomes.refused > 0, JSON.stringify(outcomes));
});

test('YAML recipe text with characters inserted, deleted or replaced: RecipeError or a judged recipe', () => {
  const texts = VALID.map((recipe) => stringify(recipe));
  const outcomes = { recipe: 0, refused: 0 };
  const edit = fc.tuple(
    fc.constantFrom('insert', 'delete', 'replace'),
    fc.nat(),
    fc.oneof(
      fc.constantFrom('[', ']', '{', '}', ':', '-', ' ', '\n', '&a ', '*a', '!!binary ', "'", '"', '#'),
      fc.string({ maxLength: 4 }),
    ),
  );
  fc.assert(
    fc.property(fc.constantFrom(...texts), fc.array(edit, { minLength: 1, maxLength: 5 }), (text, edits) => {
      let mutated = text;
      for (const [kind, at, chars] of edits) {
        const i = at % (mutated.length + 1);
        if (kind === 'insert') mutated = mutated.slice(0, i) + chars + mutated.slice(i);
        else if (kind === 'delete') mutated = mutated.slice(0, i) + mutated.slice(i + 1);
        else mutated = mutated.slice(0, i) + chars + mutated.slice(i + chars.length);
      }
      outcomes[judge(() => parseRecipe(mutated))]++;
    }),
    { numRuns: 400 },
  );
  assert.ok(outcomes.recipe > 0 && outcomes.refused > 0, JSON.stringify(outcomes));
});

test('hostile YAML: nesting past the limit, alias bombs and oversized text are RecipeErrors', () => {
  const cases = [
    `merge_method: linear\nmodels:\n  - model: a\n    parameters:\n      weight: ${'['.repeat(5000)}1${']'.repeat(5000)}\n`,
    'a: &a [1,2]\nb: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]\nc: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]\nd: [*c,*c,*c,*c,*c,*c,*c,*c,*c]\nmerge_method: linear\n',
    `merge_method: linear\nx: "${'y'.repeat(2 * 1024 * 1024)}"\n`,
  ];
  for (const text of cases) assert.throws(() => parseRecipe(text), RecipeError);
  let deep: unknown = 1;
  for (let i = 0; i < 5000; i++) deep = { a: [deep] };
  assert.throws(
    () => parseRecipe({ merge_method: 'linear', models: [{ model: 'a', parameters: { weight: deep } }] }),
    (error: unknown) => error instanceof RecipeError && error.code === 'too_deep',
  );
});
