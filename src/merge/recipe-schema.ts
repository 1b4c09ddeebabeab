// The recipe as a plain JSON Schema (draft 2020-12 subset that OpenAPI 3.1 accepts), for the API's
// request body and the docs. parseRecipe stays the authority: it also checks what a schema cannot say.
import { RECIPE_DTYPES } from './recipe.ts';

const settingValue = {
  oneOf: [
    { type: 'number' },
    { type: 'boolean' },
    { type: 'string' },
    { type: 'array', items: { type: 'number' }, minItems: 1, description: 'A gradient over the layers.' },
  ],
};

const parameterSetting = {
  oneOf: [
    ...settingValue.oneOf,
    {
      type: 'array',
      minItems: 1,
      description:
        'A filter list: the first entry whose filter is a substring of the tensor name wins ("*" matches all).',
      items: {
        type: 'object',
        additionalProperties: false,
        required: ['value'],
        properties: { filter: { type: 'string' }, value: settingValue },
      },
    },
  ],
};

const parameters = {
  type: 'object',
  additionalProperties: parameterSetting,
  description: 'Parameter name -> value, gradient or filter list (mergekit semantics).',
};

export const recipeJsonSchema: Record<string, unknown> = {
  $id: 'lorafuse-recipe',
  type: 'object',
  additionalProperties: false,
  required: ['merge_method', 'models'],
  properties: {
    merge_method: { type: 'string', description: 'A method name from GET /v1/methods.' },
    base_model: {
      type: 'string',
      description: 'The base model (a path for the CLI, an artifact id for the API).',
    },
    models: {
      type: 'array',
      minItems: 1,
      items: {
        type: 'object',
        additionalProperties: false,
        properties: { model: { type: 'string' }, adapter: { type: 'string' }, parameters },
      },
    },
    parameters,
    dtype: { type: 'string', enum: [...RECIPE_DTYPES] },
    out_dtype: { type: 'string', enum: [...RECIPE_DTYPES] },
    seed: { type: 'integer', minimum: 0, maximum: Number.MAX_SAFE_INTEGER },
    lora: {
      type: 'object',
      additionalProperties: false,
      properties: {
        space: { type: 'string', enum: ['parameters', 'delta'], default: 'parameters' },
        rank: {
          oneOf: [
            { type: 'integer', minimum: 1 },
            { type: 'string', enum: ['full'] },
          ],
        },
        output: { type: 'string', enum: ['adapter', 'model'] },
      },
    },
    max_shard_size: {
      oneOf: [
        { type: 'integer', minimum: 1 },
        { type: 'string', pattern: '^\\s*\\d+(\\.\\d+)?\\s*[A-Za-z]*\\s*$' },
      ],
      description:
        'Largest output shard (bytes, or "5GB", "500MB", "2GiB"), as mergekit\'s --max-shard-size. A model larger than one shard is written in the Hugging Face sharded layout (model-NNNNN-of-NNNNN.safetensors + model.safetensors.index.json), each shard merged by a job of its own. Default: the service\'s LORAFUSE_MERGE_SHARD_BYTES (5GB).',
    },
    tokenizer_source: { description: 'Accepted for mergekit compatibility and ignored.' },
    tokenizer: { description: 'Accepted for mergekit compatibility and ignored.' },
    chat_template: { description: 'Accepted for mergekit compatibility and ignored.' },
    name: { type: 'string', description: 'Accepted for mergekit compatibility and ignored.' },
  },
};
