import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { test } from 'node:test';
import { Ajv } from 'ajv';
import { parse as parseYaml } from 'yaml';
import { parseRecipe, RecipeError, recipeJsonSchema, recipeReferences } from '../../src/merge/index.ts';
import { GOLDEN_DIR } from '../helpers/golden.ts';

function rejects(input: string | Record<string, unknown>, code: string, path: string): void {
  assert.throws(
    () => parseRecipe(input),
    (e: unknown) => e instanceof RecipeError && e.code === code && e.path === path,
    `${code} at ${path}`,
  );
}

test('parses mergekit YAML: models, parameters, gradients, filter lists, dtype, seed', () => {
  const recipe = parseRecipe(`
merge_method: ties
base_model: base
models:
  - model: m0
    parameters:
      weight: [1.0, 0.5]
      density: 0.3
  - model: m1
    parameters:
      weight:
        - filter: mlp
          value: 0.9
        - value: 0.5
parameters:
  normalize: true
dtype: bfloat16
out_dtype: float16
seed: 42
tokenizer_source: base
`);
  assert.equal(recipe.merge_method, 'ties');
  assert.equal(recipe.base_model, 'base');
  assert.deepEqual(recipe.models[0].parameters, { weight: [1.0, 0.5], density: 0.3 });
  assert.deepEqual(recipe.models[1].parameters?.weight, [{ filter: 'mlp', value: 0.9 }, { value: 0.5 }]);
  assert.deepEqual(recipe.parameters, { normalize: true });
  assert.equal(recipe.dtype, 'bfloat16');
  assert.equal(recipe.out_dtype, 'float16');
  assert.equal(recipe.seed, 42);
  assert.match(recipe.notes![0], /tokenizer_source is ignored/);
  assert.deepEqual(recipeReferences(recipe), { models: ['m0', 'm1', 'base'], adapters: [] });
});

test('adapter recipes and lora options', () => {
  const recipe = parseRecipe({
    merge_method: 'task_arithmetic',
    models: [{ adapter: 'a0', parameters: { weight: 1 } }, { adapter: 'a1' }, { adapter: 'a0' }],
    lora: { space: 'delta', rank: 8, output: 'adapter' },
  });
  assert.deepEqual(recipe.lora, { space: 'delta', rank: 8, output: 'adapter' });
  assert.deepEqual(recipeReferences(recipe), { models: [], adapters: ['a0', 'a1'] });
  assert.deepEqual(parseRecipe({ merge_method: 'x', models: [{ adapter: 'a' }], lora: {} }).lora, {
    space: 'parameters',
  });
});

test('structural errors carry a code and the path of the field', () => {
  rejects('merge_method: [', 'invalid_yaml', '');
  rejects('- 1', 'invalid_type', '');
  rejects({ models: [{ model: 'a' }] }, 'invalid_type', 'merge_method');
  rejects({ merge_method: 'linear' }, 'missing_field', 'models');
  rejects({ merge_method: 'linear', models: [] }, 'missing_field', 'models');
  rejects({ merge_method: 'linear', models: ['a'] }, 'invalid_type', 'models[0]');
  rejects({ merge_method: 'linear', models: [{ model: 'a', adapter: 'b' }] }, 'invalid_value', 'models[0]');
  rejects({ merge_method: 'linear', models: [{ model: 'a', extra: 1 }] }, 'unknown_field', 'models[0].extra');
  rejects({ merge_method: 'linear', models: [{ model: 'a' }, { adapter: 'b' }] }, 'invalid_value', 'models');
  rejects(
    { merge_method: 'linear', models: [{ model: 'a', parameters: { weight: [[1]] } }] },
    'invalid_type',
    'models[0].parameters.weight[0]',
  );
  rejects(
    { merge_method: 'linear', models: [{ model: 'a', parameters: { weight: [] } }] },
    'invalid_value',
    'models[0].parameters.weight',
  );
  rejects(
    { merge_method: 'linear', models: [{ model: 'a', parameters: { weight: [1, 'x'] } }] },
    'invalid_type',
    'models[0].parameters.weight[1]',
  );
  rejects(
    {
      merge_method: 'linear',
      models: [{ model: 'a', parameters: { weight: [{ filter: 'x', value: 1, other: 2 }] } }],
    },
    'unknown_field',
    'models[0].parameters.weight[0].other',
  );
  rejects(
    { merge_method: 'linear', models: [{ model: 'a' }], parameters: { t: { filter: 'x', value: 1 } } },
    'unexpected_setting_value',
    'parameters.t',
  );
  rejects({ merge_method: 'linear', models: [{ model: 'a' }], seed: 1.5 }, 'invalid_value', 'seed');
  rejects({ merge_method: 'linear', models: [{ model: 'a' }], seed: -1 }, 'invalid_value', 'seed');
  rejects({ merge_method: 'linear', models: [{ model: 'a' }], dtype: 'int8' }, 'invalid_value', 'dtype');
  rejects({ merge_method: 'linear', models: [{ model: 'a' }], paramters: {} }, 'unknown_field', 'paramters');
  rejects({ merge_method: 'linear', models: [{ model: 'a' }], slices: [] }, 'unsupported', 'slices');
  rejects(
    { merge_method: 'linear', models: [{ model: 'a' }], lora: { space: 'delta' } },
    'invalid_value',
    'lora',
  );
  rejects(
    { merge_method: 'x', models: [{ adapter: 'a' }], lora: { space: 'weights' } },
    'invalid_value',
    'lora.space',
  );
  rejects({ merge_method: 'x', models: [{ adapter: 'a' }], lora: { rank: 4 } }, 'invalid_value', 'lora.rank');
  rejects(
    { merge_method: 'x', models: [{ adapter: 'a' }], lora: { space: 'delta', rank: 0 } },
    'invalid_value',
    'lora.rank',
  );
  rejects(
    { merge_method: 'x', models: [{ adapter: 'a' }], lora: { output: 'model' } },
    'invalid_value',
    'lora.output',
  );
});

test('the JSON schema is a plain object describing the same fields', () => {
  const schema = recipeJsonSchema as { required: string[]; properties: Record<string, unknown> };
  assert.deepEqual(schema.required, ['merge_method', 'models']);
  for (const key of [
    'merge_method',
    'base_model',
    'models',
    'parameters',
    'dtype',
    'out_dtype',
    'seed',
    'lora',
  ]) {
    assert.ok(key in schema.properties, key);
  }
  // Plain JSON data (what the OpenAPI document and Fastify's validator receive), nothing lost in a round trip.
  assert.deepEqual(JSON.parse(JSON.stringify(recipeJsonSchema)), recipeJsonSchema);
});

test('the JSON schema accepts and rejects what parseRecipe does (Ajv, the validator Fastify runs)', async () => {
  const validate = new Ajv({ strict: false }).compile({ ...recipeJsonSchema, $id: undefined });
  const goldenDir = GOLDEN_DIR;
  const recipes = (await readdir(goldenDir, { withFileTypes: true }))
    .filter((entry) => entry.isDirectory())
    .map((entry) => path.join(goldenDir, entry.name, 'recipe.yaml'))
    .filter((file) => existsSync(file));
  assert.ok(recipes.length >= 5, `golden recipes found: ${recipes.length}`);
  for (const file of recipes) {
    const text = await readFile(file, 'utf8');
    assert.doesNotThrow(() => parseRecipe(text), file);
    assert.ok(validate(parseYaml(text)), `${file}: ${JSON.stringify(validate.errors)}`);
  }
  const valid = { merge_method: 'linear', models: [{ model: 'a', parameters: { weight: 1 } }] };
  for (const invalid of [
    { merge_method: 'linear' },
    { ...valid, models: [] },
    { ...valid, models: [{ model: 'a', weights: 1 }] },
    { ...valid, out_dtype: 'float7' },
    { ...valid, seed: -1 },
    { ...valid, lora: { space: 'weights' } },
    { ...valid, surprise: true },
    { ...valid, max_shard_size: 0 },
    { ...valid, max_shard_size: 'huge' },
    { ...valid, max_shard_size: [5] },
  ]) {
    assert.equal(validate(invalid), false, `schema accepted ${JSON.stringify(invalid)}`);
    assert.throws(() => parseRecipe(invalid), RecipeError, `parseRecipe accepted ${JSON.stringify(invalid)}`);
  }
  assert.ok(validate(valid), JSON.stringify(validate.errors));
  for (const size of [1_000_000, '5GB', '500 MB', '2GiB']) {
    assert.ok(validate({ ...valid, max_shard_size: size }), JSON.stringify(validate.errors));
  }
});

test("max_shard_size: mergekit's --max-shard-size in the recipe, bytes or a size, parsed to bytes", () => {
  const base = { merge_method: 'linear', models: [{ model: 'a', parameters: { weight: 1 } }] };
  assert.equal(parseRecipe({ ...base, max_shard_size: 1234 }).max_shard_size, 1234);
  assert.equal(parseRecipe({ ...base, max_shard_size: '5GB' }).max_shard_size, 5e9);
  assert.equal(parseRecipe({ ...base, max_shard_size: '2GiB' }).max_shard_size, 2 * 1024 ** 3);
  assert.equal(parseRecipe({ ...base, max_shard_size: null }).max_shard_size, undefined);
  rejects({ ...base, max_shard_size: 0 }, 'invalid_value', 'max_shard_size');
  rejects({ ...base, max_shard_size: 1.5 }, 'invalid_value', 'max_shard_size');
  rejects({ ...base, max_shard_size: '5 parsecs' }, 'invalid_value', 'max_shard_size');
  rejects({ ...base, max_shard_size: true }, 'invalid_type', 'max_shard_size');
});

test('sparse arrays (holes) in models, gradients and filter lists are refused, not skipped', () => {
  const holes = (length: number, entries: Record<number, unknown>): unknown[] => {
    const array = new Array(length);
    for (const [i, v] of Object.entries(entries)) array[Number(i)] = v;
    return array;
  };
  const cases: Array<[Record<string, unknown>, RegExp]> = [
    [
      { merge_method: 'linear', models: holes(2, { 0: { model: 'a', parameters: { weight: 1 } } }) },
      /models\[1\]/,
    ],
    [
      { merge_method: 'linear', models: [{ model: 'a', parameters: { weight: holes(2, { 0: 0.5 }) } }] },
      /weight\[1\]/,
    ],
    [
      {
        merge_method: 'linear',
        models: [{ model: 'a', parameters: { weight: holes(2, { 0: { filter: 'mlp', value: 1 } }) } }],
      },
      /weight\[1\]/,
    ],
  ];
  for (const [recipe, path] of cases) {
    assert.throws(
      () => parseRecipe(recipe),
      (error: unknown) => error instanceof RecipeError && path.test(error.message),
    );
  }
});
