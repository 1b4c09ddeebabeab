// POST /v1/evaluations: accuracy and loss of a stored model, alone or with each of some adapters,
// on stored datasets; queued on the evaluate queue after the ids are checked.
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type, type Static } from 'typebox';
import { type EvaluateJobPayload, hashBody } from '../../../queue/index.ts';
import { ApiProblem } from '../../errors.ts';
import { problemResponses } from '../../schemas.ts';
import { requireArtifacts, requireRunnable } from '../jobs/job-inputs.ts';
import {
  IdempotencyHeaders,
  idempotencyKeyOf,
  JobCreatedResponses,
  sendJob,
  submitJob,
} from '../jobs/submission.ts';

const ArtifactId = Type.String({ minLength: 1, maxLength: 100 });

const EvaluationBody = Type.Object(
  {
    model: ArtifactId,
    adapters: Type.Optional(
      Type.Array(ArtifactId, {
        maxItems: 32,
        uniqueItems: true,
        description:
          'Each adapter is evaluated on its own over the model; without adapters, the model alone.',
      }),
    ),
    datasets: Type.Array(ArtifactId, { minItems: 1, maxItems: 32, uniqueItems: true }),
  },
  { additionalProperties: false },
);

const evaluationRoutes: FastifyPluginAsyncTypebox = async (app) => {
  app.post(
    '/v1/evaluations',
    {
      schema: {
        tags: ['evaluations'],
        summary: 'Queue an evaluation',
        description:
          'Accuracy and mean cross-entropy per (adapter, dataset) in the job result: {model, results: [{adapter, dataset, task, split, examples, accuracy, loss}]}. Unknown ids, a model without config.json, or more (adapter, dataset) pairs than LORAFUSE_MAX_EVALUATION_TASKS are a 422.',
        body: EvaluationBody,
        headers: IdempotencyHeaders,
        response: { ...JobCreatedResponses, ...problemResponses(400, 409, 415, 422) },
      },
    },
    async (request, reply) => {
      const body = request.body as Static<typeof EvaluationBody>;
      const idempotencyKey = idempotencyKeyOf(request);
      const adapters = body.adapters ?? [];
      const tasks = Math.max(adapters.length, 1) * body.datasets.length;
      if (tasks > app.config.limits.maxEvaluationTasks) {
        throw new ApiProblem(
          'limit-exceeded',
          `${tasks} (adapter, dataset) evaluations is over the limit of ${app.config.limits.maxEvaluationTasks} per job (LORAFUSE_MAX_EVALUATION_TASKS)`,
          { limit: app.config.limits.maxEvaluationTasks, value: tasks },
        );
      }
      const [model] = await requireArtifacts(app.store, [
        { field: 'model', id: body.model, kind: 'model' },
        ...adapters.map((id, i) => ({ field: `adapters[${i}]`, id, kind: 'adapter' as const })),
        ...body.datasets.map((id, i) => ({ field: `datasets[${i}]`, id, kind: 'dataset' as const })),
      ]);
      requireRunnable(model, 'model');
      const payload: EvaluateJobPayload = {
        recipe: { ...body },
        model: model.id,
        adapters,
        datasets: body.datasets,
        inputs: [model.id, ...adapters, ...body.datasets],
      };
      const { job, created } = await submitJob(app, 'evaluate', payload, payload.inputs, {
        idempotencyKey,
        bodyHash: hashBody({ type: 'evaluate', body }),
      });
      return sendJob(reply, job, created);
    },
  );
};

export default evaluationRoutes;
