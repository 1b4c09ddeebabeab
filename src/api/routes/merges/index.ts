// POST /v1/merges: a mergekit recipe naming artifact ids, validated whole, then queued.
import { randomInt } from 'node:crypto';
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { FastifySchemaCompiler } from 'fastify';
import { recipeJsonSchema } from '../../../merge/index.ts';
import { hashBody } from '../../../queue/index.ts';
import { ApiProblem } from '../../errors.ts';
import { problemResponses } from '../../schemas.ts';
import {
  IdempotencyHeaders,
  idempotencyKeyOf,
  JobCreatedResponses,
  sendJob,
  submitJob,
} from '../jobs/submission.ts';
import { validateMerge } from './validate-merge.ts';

/**
 * parseRecipe is the authority on recipes (its errors carry the offending path and become 422),
 * so the JSON Schema documents the body while validation only asks for a JSON object.
 */
const recipeBodyOnly: FastifySchemaCompiler<unknown> = ({ httpPart }) =>
  httpPart === 'body'
    ? (value: unknown) =>
        value !== null && typeof value === 'object' && !Array.isArray(value)
          ? true
          : { error: Object.assign(new Error('body must be a JSON object: the recipe'), { statusCode: 400 }) }
    : () => true;

const mergeRoutes: FastifyPluginAsyncTypebox = async (app) => {
  app.post(
    '/v1/merges',
    {
      validatorCompiler: recipeBodyOnly,
      // Fastify also parses text/plain; a recipe is JSON.
      preValidation: async (request) => {
        if (!/^application\/json\s*(;|$)/i.test(request.headers['content-type'] ?? '')) {
          throw new ApiProblem('unsupported-media-type', 'send the recipe as application/json');
        }
      },
      schema: {
        tags: ['merges'],
        summary: 'Queue a merge',
        description:
          'The body is a mergekit recipe with artifact ids in place of paths. Structure, artifact ids, method, parameters and shapes are checked before queueing (422 otherwise). Without a seed, one is chosen and written into the recipe. With an Idempotency-Key, the same key and body return the same job (200); the same key with another body is a 409.',
        body: { ...recipeJsonSchema, $id: undefined },
        headers: IdempotencyHeaders,
        response: { ...JobCreatedResponses, ...problemResponses(400, 409, 415, 422) },
      },
    },
    async (request, reply) => {
      const body = request.body as Record<string, unknown>;
      const idempotencyKey = idempotencyKeyOf(request);
      const { inputs } = await validateMerge(app.store, body, {
        maxModels: app.config.limits.maxRecipeModels,
      });
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
