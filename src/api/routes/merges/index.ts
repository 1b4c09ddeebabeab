// POST /v1/merges: a mergekit recipe naming artifact ids (as JSON or YAML), validated whole, then queued.
import { randomInt } from 'node:crypto';
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { FastifySchemaCompiler } from 'fastify';
import { Type } from 'typebox';
import { hashBody } from '../../../queue/index.ts';
import { problemResponses } from '../../schemas.ts';
import {
  IdempotencyHeaders,
  idempotencyKeyOf,
  JobCreatedResponses,
  sendJob,
  submitJob,
} from '../jobs/submission.ts';
import { validateMerge } from './validate-merge.ts';
import {
  isRecipeMediaType,
  parseYamlRecipe,
  RECIPE_MEDIA_TYPES,
  unsupportedRecipeType,
  YAML_MEDIA_TYPES,
} from './yaml-body.ts';

/**
 * parseRecipe is the authority on recipes (its errors carry the offending path and become 422),
 * so the JSON Schema documents the body while validation only asks for a JSON object.
 */
const recipeBodyOnly: FastifySchemaCompiler<unknown> = ({ httpPart }) =>
  httpPart === 'body'
    ? (value: unknown) =>
        value !== null && typeof value === 'object' && !Array.isArray(value)
          ? true
          : { error: Object.assign(new Error('body must be an object: the recipe'), { statusCode: 400 }) }
    : () => true;

const mergeRoutes: FastifyPluginAsyncTypebox = async (app) => {
  // Both parsers are scoped to this plugin: YAML is a recipe format, not a general request format.
  app.addContentTypeParser([...YAML_MEDIA_TYPES], { parseAs: 'string' }, (_request, body, done) => {
    try {
      done(null, parseYamlRecipe(body as string));
    } catch (error) {
      done(error as Error, undefined);
    }
  });
  // Any other type is refused before its body is read, naming the types this route takes.
  app.addContentTypeParser('*', (request, _payload, done) => {
    done(unsupportedRecipeType(request.headers['content-type']), undefined);
  });
  const recipeSchema = Type.Ref('Recipe', { description: 'A mergekit recipe naming artifact ids.' });
  app.post(
    '/merges',
    {
      validatorCompiler: recipeBodyOnly,
      // Fastify also parses text/plain; a recipe is JSON or YAML.
      preValidation: async (request) => {
        if (!isRecipeMediaType(request.headers['content-type'])) {
          throw unsupportedRecipeType(request.headers['content-type']);
        }
      },
      schema: {
        tags: ['merges'],
        summary: 'Queue a merge',
        description:
          'The body is a mergekit recipe with artifact ids in place of paths, as application/json or application/yaml (the same recipe; also accepted as application/x-yaml or text/yaml); any other type is a 415 naming the accepted ones. Structure, artifact ids, method, parameters and shapes are checked before queueing (422 otherwise). Without a seed, one is chosen and written into the recipe. With an Idempotency-Key, the same key and body return the same job (200); the same key with another body is a 409.',
        body: {
          content: Object.fromEntries(RECIPE_MEDIA_TYPES.map((type) => [type, { schema: recipeSchema }])),
        },
        headers: IdempotencyHeaders,
        response: { ...JobCreatedResponses, ...problemResponses(400, 409, 415, 422) },
      },
    },
    async (request, reply) => {
      const body = request.body as Record<string, unknown>;
      const idempotencyKey = idempotencyKeyOf(request);
      const { inputs } = await validateMerge(app.store, body);
      // The seed is part of the recipe so that a rerun reproduces random methods exactly.
      const seed = typeof body.seed === 'number' ? body.seed : randomInt(0, 2 ** 31 - 1);
      const recipe = { ...body, seed };
      const { job, created } = await submitJob(app, 'merge', { recipe, inputs, seed }, inputs, {
        idempotencyKey,
        bodyHash: hashBody({ type: 'merge', body }),
      });
      return sendJob(reply, job, created);
    },
  );
};

export default mergeRoutes;
