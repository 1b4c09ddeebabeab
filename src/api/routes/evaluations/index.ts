// POST /v1/evaluations: accuracy and loss of a stored model, alone or with each of some adapters,
// on stored datasets; queued on the evaluate queue after the ids are checked.
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type, type Static } from 'typebox';
import { type EvaluateJobPayload, hashBody } from '../../../queue/index.ts';
import { ApiProblem } from '../../errors.ts';
import { problemResponses } from '../../schemas.ts';
import { headOf } from '../merges/evaluation-tasks.ts';
import { requireHeadFitsDataset } from '../jobs/head-classes.ts';
import { requireArtifacts, requireRunnable } from '../jobs/job-inputs.ts';
import {
  IdempotencyHeaders,
  idempotencyKeyOf,
  JobCreatedResponses,
  sendJob,
  submitJob,
  callbackOf,
  CallbackUrlProperty,
} from '../jobs/submission.ts';

const ArtifactId = Type.String({ minLength: 1, maxLength: 100 });

const EvaluationBody = Type.Object(
  {
    model: ArtifactId,
    callback_url: CallbackUrlProperty,
    adapters: Type.Optional(
      Type.Array(ArtifactId, {
        maxItems: 32,
        uniqueItems: true,
        description:
          'Each adapter is evaluated on its own over the model; without adapters, the model alone.',
      }),
    ),
    datasets: Type.Array(
      Type.Union([
        ArtifactId,
        Type.Object(
          {
            dataset: ArtifactId,
            head: Type.Optional(
              Type.String({
                description:
                  'Read this dataset through a head: an adapter id (its modules_to_save classifier), a head id (POST /v1/heads) or a model id (its classifier), as merge evaluation tasks take it.',
              }),
            ),
          },
          { additionalProperties: false },
        ),
      ]),
      {
        minItems: 1,
        maxItems: 32,
        description: 'Dataset ids, or {dataset, head} to read that dataset through a task head.',
      },
    ),
  },
  { additionalProperties: false },
);

const evaluationRoutes: FastifyPluginAsyncTypebox = async (app) => {
  app.post(
    '/evaluations',
    {
      schema: {
        tags: ['evaluations'],
        summary: 'Queue an evaluation',
        description:
          'Accuracy and mean cross-entropy per (adapter, dataset) in the job result: {model, results: [{adapter, dataset, head, task, split, examples, accuracy, loss}]}. A dataset given as {dataset, head} is read through that head (as a merge evaluation task is). A head that answers another number of classes than the class_names of its dataset is a 422 head-class-mismatch. Unknown ids, a model without config.json, or more (adapter, dataset) pairs than LORAFUSE_MAX_EVALUATION_TASKS are a 422.',
        body: EvaluationBody,
        headers: IdempotencyHeaders,
        response: { ...JobCreatedResponses, ...problemResponses(400, 409, 415, 422) },
      },
    },
    async (request, reply) => {
      const body = request.body as Static<typeof EvaluationBody>;
      const callback = await callbackOf(app, body.callback_url, request.principal.project);
      const idempotencyKey = idempotencyKeyOf(request);
      const adapters = body.adapters ?? [];
      const entries = body.datasets.map((entry) => (typeof entry === 'string' ? { dataset: entry } : entry));
      const datasets = entries.map((entry) => entry.dataset);
      if (new Set(datasets).size !== datasets.length) {
        throw new ApiProblem('invalid-request', 'datasets: a dataset is listed twice', { path: 'datasets' });
      }
      const tasks = Math.max(adapters.length, 1) * body.datasets.length;
      if (tasks > app.config.limits.maxEvaluationTasks) {
        throw new ApiProblem(
          'limit-exceeded',
          `${tasks} (adapter, dataset) evaluations is over the limit of ${app.config.limits.maxEvaluationTasks} per job (LORAFUSE_MAX_EVALUATION_TASKS)`,
          { limit: app.config.limits.maxEvaluationTasks, value: tasks },
        );
      }
      const [model] = await requireArtifacts(request.store, [
        { field: 'model', id: body.model, kind: 'model' },
        ...adapters.map((id, i) => ({ field: `adapters[${i}]`, id, kind: 'adapter' as const })),
        ...datasets.map((id, i) => ({ field: `datasets[${i}]`, id, kind: 'dataset' as const })),
      ]);
      requireRunnable(model, 'model');
      const heads: Record<string, string> = {};
      for (const [i, entry] of entries.entries()) {
        if (entry.head === undefined) continue;
        const record = await request.store.get(entry.head);
        if (!record || !['adapter', 'head', 'model'].includes(record.kind)) {
          throw new ApiProblem(
            'unknown-artifact',
            `datasets[${i}].head: ${entry.head} is not a stored adapter, head or model`,
            {
              artifacts: [entry.head],
              fields: [`datasets[${i}].head`],
            },
          );
        }
        heads[entry.dataset] = headOf(record);
        await requireHeadFitsDataset(request.store, {
          spec: heads[entry.dataset],
          own: model,
          dataset: (await request.store.get(entry.dataset))!,
          task: `datasets[${i}] (${entry.dataset})`,
          field: `datasets[${i}].head`,
        });
      }
      const headIds = Object.values(heads).map((spec) => spec.slice(spec.indexOf(':') + 1));
      const { callback_url: _callbackUrl, ...recipe } = body;
      const payload: EvaluateJobPayload = {
        ...callback,
        recipe,
        model: model.id,
        adapters,
        datasets,
        inputs: [...new Set([model.id, ...adapters, ...datasets, ...headIds])],
      };
      if (Object.keys(heads).length > 0) payload.heads = heads;
      const { job, created } = await submitJob(request, 'evaluate', payload, payload.inputs, {
        idempotencyKey,
        bodyHash: hashBody({ type: 'evaluate', body }),
      });
      return sendJob(reply, job, created);
    },
  );
};

export default evaluationRoutes;
