// POST /v1/analyses: label-free analysis of a set of adapters or fine-tuned models against their base
// (task-vector norms, cosine matrices, TIES sign conflicts, effective ranks), plus the weight
// disentanglement of two tasks when their datasets are named; queued on the analyze queue, the job
// writes a `report` artifact (report.json + report.html).
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { type Static, Type } from 'typebox';
import { type AnalyzeJobPayload, type AnalyzeTask, hashBody } from '../../../queue/index.ts';
import type { ArtifactStore } from '../../../store/index.ts';
import { ApiProblem } from '../../errors.ts';
import { problemResponses } from '../../schemas.ts';
import { requireHeadFitsDataset } from '../jobs/head-classes.ts';
import { requireArtifacts, requireRunnable } from '../jobs/job-inputs.ts';
import { headOf } from '../merges/evaluation-tasks.ts';
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
const InputList = Type.Array(ArtifactId, { minItems: 2, maxItems: 32, uniqueItems: true });
// linspace(−2, 2, 21), the paper's λ grid (written out here: the API does not load src/eval).
const DEFAULT_GRID = Array.from({ length: 21 }, (_, i) => (i === 20 ? 2 : -2 + i * 0.2));

const AnalysisTask = Type.Object(
  {
    input: Type.String({ description: 'One of the adapters (or models) analysed: its task vector is τₜ.' }),
    dataset: Type.String({
      description: "The task's examples (labels are used only for the per-task table).",
    }),
    name: Type.Optional(Type.String({ minLength: 1, maxLength: 100 })),
    head: Type.Optional(
      Type.String({
        minLength: 1,
        maxLength: 100,
        description:
          "How the task reads the body, as a merge evaluation task takes it: a head id (POST /v1/heads), an adapter id (its modules_to_save classifier) or a model id (its classifier). Default: the input's own head. It must answer as many classes as the dataset's class_names (else 422 head-class-mismatch).",
      }),
    ),
  },
  { additionalProperties: false },
);

const AnalysisBody = Type.Object(
  {
    callback_url: CallbackUrlProperty,
    base_model: Type.String({
      minLength: 1,
      maxLength: 100,
      description: 'The base θ₀ every input was fine-tuned from.',
    }),
    adapters: Type.Optional(InputList),
    models: Type.Optional(InputList),
    names: Type.Optional(
      Type.Array(Type.String({ minLength: 1, maxLength: 100 }), {
        maxItems: 32,
        description:
          'Display names in input order (default: the task names of the disentanglement, else the ids).',
      }),
    ),
    density: Type.Optional(
      Type.Number({
        exclusiveMinimum: 0,
        maximum: 1,
        default: 1,
        description:
          "TIES's top-k trim (fraction kept per tensor) before sign conflicts are counted; 1 counts every coordinate.",
      }),
    ),
    disentanglement: Type.Optional(
      Type.Object(
        {
          tasks: Type.Array(AnalysisTask, { minItems: 2, maxItems: 2 }),
          grid: Type.Optional(
            Type.Array(Type.Number({ minimum: -100, maximum: 100 }), {
              minItems: 2,
              maxItems: 41,
              uniqueItems: true,
              description: 'λ values for both axes (default linspace(−2, 2, 21)).',
            }),
          ),
          max_examples: Type.Optional(
            Type.Integer({
              minimum: 1,
              maximum: 10000,
              default: 256,
              description: 'Examples per task (the first ones of each dataset).',
            }),
          ),
        },
        { additionalProperties: false },
      ),
    ),
  },
  { additionalProperties: false },
);

type Body = Static<typeof AnalysisBody>;

function invalid(detail: string, field: string): ApiProblem {
  return new ApiProblem('invalid-analysis', detail, { field });
}

const analysisRoutes: FastifyPluginAsyncTypebox = async (app) => {
  app.post(
    '/analyses',
    {
      schema: {
        tags: ['analyses'],
        summary: 'Queue a task-vector analysis',
        description:
          'Exactly one of `adapters` or `models`, all fine-tuned from `base_model`. The job result is {artifact: {kind: report, id}, summary, meanOffDiagonalCosine, meanOffDiagonalDeltaCosine, meanDisentanglementError}; the report artifact holds report.json (kind `analysis`: norms, cosine matrices in parameter and delta space, sign conflicts per layer, effective ranks, the disentanglement matrix) and report.html.',
        body: AnalysisBody,
        headers: IdempotencyHeaders,
        response: { ...JobCreatedResponses, ...problemResponses(400, 409, 415, 422) },
      },
    },
    async (request, reply) => {
      const body = request.body as Body;
      const { callback_url: callbackUrl, ...analysis } = body;
      const payload = {
        ...(await callbackOf(app, callbackUrl, request.principal.project)),
        ...(await validate(request.store, analysis)),
      };
      const { job, created } = await submitJob(request, 'analyze', payload, payload.inputs, {
        idempotencyKey: idempotencyKeyOf(request),
        bodyHash: hashBody({ type: 'analyze', body }),
      });
      return sendJob(reply, job, created);
    },
  );
};

async function validate(store: ArtifactStore, body: Body): Promise<AnalyzeJobPayload> {
  if ((body.adapters === undefined) === (body.models === undefined)) {
    throw invalid('give exactly one of adapters or models', body.adapters ? 'models' : 'adapters');
  }
  const kind: 'adapter' | 'model' = body.adapters ? 'adapter' : 'model';
  const field = body.adapters ? 'adapters' : 'models';
  const artifacts = (body.adapters ?? body.models) as string[];
  if (artifacts.includes(body.base_model)) throw invalid('the base model cannot also be an input', field);
  if (body.names && body.names.length !== artifacts.length) {
    throw invalid(`names has ${body.names.length} entries for ${artifacts.length} inputs`, 'names');
  }
  let disentanglement: AnalyzeJobPayload['disentanglement'] = null;
  const datasets: string[] = [];
  if (body.disentanglement) {
    const tasks = body.disentanglement.tasks.map((task, i): AnalyzeTask => {
      const input = artifacts.indexOf(task.input);
      if (input < 0) {
        throw invalid(`${task.input} is not one of the ${field}`, `disentanglement.tasks[${i}].input`);
      }
      datasets.push(task.dataset);
      return {
        name: task.name ?? body.names?.[input] ?? task.input,
        input,
        dataset: task.dataset,
        ...(task.head ? { head: task.head } : {}),
      };
    });
    if (tasks[0].input === tasks[1].input) {
      throw invalid('the two tasks must be different inputs', 'disentanglement.tasks[1].input');
    }
    disentanglement = {
      tasks: [tasks[0], tasks[1]],
      grid: body.disentanglement.grid ?? DEFAULT_GRID,
      maxExamples: body.disentanglement.max_examples ?? 256,
    };
  }
  const [base] = await requireArtifacts(store, [
    { field: 'base_model', id: body.base_model, kind: 'model' },
    ...artifacts.map((id, i) => ({ field: `${field}[${i}]`, id, kind })),
    ...datasets.map((id, i) => ({
      field: `disentanglement.tasks[${i}].dataset`,
      id,
      kind: 'dataset' as const,
    })),
  ]);
  if (disentanglement) {
    requireRunnable(base, 'base_model');
    for (const [i, task] of disentanglement.tasks.entries()) {
      const field = `disentanglement.tasks[${i}]`;
      const given = body.disentanglement!.tasks[i].head;
      if (given !== undefined) {
        const record = await store.get(given);
        if (!record || !['adapter', 'head', 'model'].includes(record.kind)) {
          throw new ApiProblem(
            'unknown-artifact',
            `${field}.head: ${given} is not a stored adapter, head or model`,
            {
              artifacts: [given],
              fields: [`${field}.head`],
            },
          );
        }
        task.head = headOf(record);
      }
      const input = artifacts[task.input];
      const own = kind === 'model' ? await store.get(input) : base;
      await requireHeadFitsDataset(store, {
        spec: task.head ?? `${kind}:${input}`,
        own,
        dataset: (await store.get(task.dataset))!,
        task: `task ${task.name}`,
        field: given !== undefined ? `${field}.head` : `${field}.dataset`,
      });
    }
  }
  const headIds = (disentanglement?.tasks ?? [])
    .map((t) => t.head?.slice(t.head.indexOf(':') + 1))
    .filter((id): id is string => id !== undefined);
  const names = artifacts.map(
    (id, i) => body.names?.[i] ?? disentanglement?.tasks.find((t) => t.input === i)?.name ?? id,
  );
  return {
    recipe: {
      ...body,
      density: body.density ?? 1,
      ...(body.disentanglement
        ? {
            disentanglement: {
              ...body.disentanglement,
              grid: disentanglement?.grid,
              max_examples: disentanglement?.maxExamples,
            },
          }
        : {}),
    },
    baseModel: body.base_model,
    kind,
    artifacts,
    names,
    density: body.density ?? 1,
    disentanglement,
    inputs: [...new Set([body.base_model, ...artifacts, ...datasets, ...headIds])],
  };
}

export default analysisRoutes;
