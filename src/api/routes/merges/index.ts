// POST /v1/merges: a mergekit recipe naming artifact ids (as JSON or YAML), validated whole, then queued.
import { randomInt } from 'node:crypto';
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { FastifySchemaCompiler } from 'fastify';
import { getMethod, parseRecipe, recipeJsonSchema } from '../../../merge/index.ts';
import {
  hashBody,
  type MergeEvaluation,
  type MergeJobPayload,
  type MergeSearch,
} from '../../../queue/index.ts';
import { ApiProblem } from '../../errors.ts';
import { problemResponses } from '../../schemas.ts';
import {
  IdempotencyHeaders,
  idempotencyKeyOf,
  JobCreatedResponses,
  sendJob,
  submitJob,
  callbackOf,
  CallbackUrlProperty,
} from '../jobs/submission.ts';
import { MergeEvaluationBody, resolveEvaluation } from './evaluation-tasks.ts';
import { gridPoints, MergeSearchBody, parseSearch, pointRecipe } from './search-grid.ts';
import { validateMerge } from './validate-merge.ts';
import {
  isRecipeMediaType,
  parseYamlRecipe,
  RECIPE_MEDIA_TYPES,
  unsupportedRecipeType,
  YAML_MEDIA_TYPES,
} from './yaml-body.ts';

/** The recipe schema plus lorafuse's two blocks beside it (mergekit's own keys stay as they are). */
const mergeBodySchema = {
  ...recipeJsonSchema,
  $id: undefined,
  properties: {
    ...(recipeJsonSchema as { properties: Record<string, unknown> }).properties,
    evaluation: MergeEvaluationBody,
    search: MergeSearchBody,
    callback_url: CallbackUrlProperty,
  },
};

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
          "The body is a mergekit recipe with artifact ids in place of paths, as application/json or application/yaml (the same recipe; also accepted as application/x-yaml or text/yaml); any other type is a 415 naming the accepted ones. Structure, artifact ids, method, parameters and shapes are checked before queueing (422 otherwise). Without a seed, one is chosen and written into the recipe. With an Idempotency-Key, the same key and body return the same job (200); the same key with another body is a 409. Data-driven methods (lorahub, adamerging, fisher, regmean) need `evaluation.tasks`, one task per input in recipe order, and read each task's validation dataset (422 invalid-merge, code needs_task_data, without them). With `evaluation`, the job then evaluates the merged artifact per task (its head, validation and test splits), each reference and the base, and writes a report artifact (result.report; GET /v1/jobs/{id}/report). With `search`, every grid point is a child job (`<id>-p<i>`) of this one; the job's artifact is the point with the best average normalized validation accuracy.",
        body: {
          content: Object.fromEntries(RECIPE_MEDIA_TYPES.map((type) => [type, { schema: mergeBodySchema }])),
        },
        headers: IdempotencyHeaders,
        response: { ...JobCreatedResponses, ...problemResponses(400, 409, 415, 422) },
      },
    },
    async (request, reply) => {
      const body = request.body as Record<string, unknown>;
      const idempotencyKey = idempotencyKeyOf(request);
      const {
        evaluation: evaluationBody,
        search: searchBody,
        callback_url: callbackUrl,
        ...recipeBody
      } = body;
      const callback = await callbackOf(app, callbackUrl, request.principal.project);
      let evaluation: MergeEvaluation | undefined;
      if (evaluationBody !== undefined) {
        evaluation = await resolveEvaluation(request.store, parseRecipe(recipeBody), evaluationBody);
      }
      // Data-driven methods read the tasks' validation data: validateMerge refuses them without it.
      const validate = (recipe: Record<string, unknown>) =>
        validateMerge(
          request.store,
          recipe,
          evaluation,
          { maxModels: app.config.limits.maxRecipeModels },
          app.headerCache,
        );
      const { inputs } = await validate(recipeBody);
      let search: MergeSearch | undefined;
      let children: MergeJobPayload[] | undefined;
      // The seed is part of the recipe so that a rerun reproduces random methods exactly.
      const seed = typeof body.seed === 'number' ? body.seed : randomInt(0, 2 ** 31 - 1);
      const recipe: Record<string, unknown> = { ...recipeBody, seed };
      const allInputs = [...new Set([...inputs, ...evaluationInputs(evaluation)])];
      if (searchBody !== undefined) {
        if (!evaluation)
          throw new ApiProblem(
            'invalid-evaluation',
            "search: needs evaluation (it selects on the tasks' validation splits)",
            { path: 'search' },
          );
        search = parseSearch(searchBody);
        const method = getMethod(String(recipe.merge_method));
        const known = new Set(method?.parameters.map((p) => p.name) ?? []);
        for (const name of Object.keys(search.grid)) {
          if (!known.has(name)) {
            throw new ApiProblem(
              'invalid-evaluation',
              `search.grid.${name}: ${recipe.merge_method} has no parameter ${name}`,
              { path: `search.grid.${name}` },
            );
          }
        }
        children = [];
        for (const [index, params] of gridPoints(search.grid).entries()) {
          const point = pointRecipe(recipe, params);
          // A value out of its declared range is a 422 now, not a failed child.
          await validate(point);
          children.push({ recipe: point, inputs: allInputs, seed, evaluation, point: { index, params } });
        }
      }
      const payload: MergeJobPayload = { ...callback, recipe, inputs: allInputs, seed };
      if (evaluation) payload.evaluation = evaluation;
      if (search) payload.search = search;
      const { job, created } = await submitJob(request, 'merge', payload, allInputs, {
        idempotencyKey,
        bodyHash: hashBody({ type: 'merge', body }),
        children,
      });
      return sendJob(reply, job, created);
    },
  );
};

/** Every artifact an evaluation reads (datasets, heads, references, base): none may be deleted meanwhile. */
function evaluationInputs(evaluation: MergeEvaluation | undefined): string[] {
  if (!evaluation) return [];
  const ids = new Set<string>();
  if (evaluation.baseModel) ids.add(evaluation.baseModel);
  for (const task of evaluation.tasks) {
    ids.add(task.validation).add(task.test);
    if (task.reference) ids.add(task.reference);
    const colon = task.head.indexOf(':');
    if (colon > 0) ids.add(task.head.slice(colon + 1));
  }
  return [...ids];
}

export default mergeRoutes;
