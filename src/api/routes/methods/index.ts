// GET /v1/methods: the merge registry as data, straight from each method's declaration.
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from 'typebox';
import { describeRange, MERGE_METHODS, type MergeMethod } from '../../../merge/index.ts';

const Range = Type.Object(
  {
    min: Type.Optional(Type.Number()),
    max: Type.Optional(Type.Number()),
    minExclusive: Type.Optional(Type.Boolean()),
    maxExclusive: Type.Optional(Type.Boolean()),
    text: Type.String({ description: 'The interval as written in the docs, e.g. "(0, 1]".' }),
  },
  {
    description:
      'Accepted values of a number or integer parameter; a value outside is a 422 before queueing.',
  },
);

const Parameter = Type.Object({
  name: Type.String(),
  scope: Type.Union([Type.Literal('per-model'), Type.Literal('global')]),
  type: Type.Union([
    Type.Literal('number'),
    Type.Literal('integer'),
    Type.Literal('boolean'),
    Type.Literal('string'),
  ]),
  default: Type.Optional(Type.Union([Type.Number(), Type.Boolean(), Type.String()])),
  required: Type.Boolean(),
  description: Type.String(),
  enum: Type.Optional(Type.Array(Type.String())),
  range: Type.Optional(Range),
});

const DataNeeds = Type.Object(
  {
    split: Type.Literal('validation'),
    labels: Type.Union([Type.Literal('labeled'), Type.Literal('unlabeled')]),
    inputs: Type.Array(Type.Union([Type.Literal('models'), Type.Literal('adapters')]), {
      description: 'The input kinds the method merges.',
    }),
    adapterSpace: Type.Optional(
      Type.Union([Type.Literal('parameters'), Type.Literal('delta')], {
        description: 'How adapters are combined: lora_A/lora_B directly, or their dense deltas sᵢBᵢAᵢ.',
      }),
    ),
    adapterOutput: Type.Optional(Type.Union([Type.Literal('adapter'), Type.Literal('model')])),
    baseModelForModels: Type.Union([
      Type.Literal('required'),
      Type.Literal('optional'),
      Type.Literal('none'),
    ]),
  },
  {
    description:
      'Data-driven methods only: the data they read per task (task i is recipe input i; given as evaluation.tasks of POST /v1/merges).',
  },
);

const Method = Type.Object({
  name: Type.String(),
  kind: Type.Union([Type.Literal('tensor'), Type.Literal('adapter'), Type.Literal('data-driven')], {
    description:
      "tensor: mergekit-style per-tensor method; adapter: PEFT add_weighted_adapter-style; data-driven: reads each task's validation data (needs evaluation.tasks; not runnable by `lorafuse merge`).",
  }),
  description: Type.String(),
  paper: Type.Optional(Type.String()),
  notes: Type.Optional(Type.String()),
  baseModel: Type.Union([Type.Literal('required'), Type.Literal('optional'), Type.Literal('none')]),
  random: Type.Boolean({ description: 'Draws random numbers: the recipe seed makes it reproducible.' }),
  minModels: Type.Optional(Type.Integer()),
  maxModels: Type.Optional(Type.Integer()),
  parameters: Type.Array(Parameter),
  data: Type.Optional(DataNeeds),
  parameterRule: Type.Optional(
    Type.String({ description: 'A rule across parameters, checked for every tensor before queueing.' }),
  ),
});

export const MethodList = Type.Object({ items: Type.Array(Method) });

function dataNeeds(method: MergeMethod) {
  if (method.kind !== 'data-driven') return undefined;
  const adapters = method.inputs.adapters;
  return {
    split: method.data.split,
    labels: method.data.labels,
    inputs: [
      ...(method.inputs.models ? (['models'] as const) : []),
      ...(adapters ? (['adapters'] as const) : []),
    ],
    adapterSpace: adapters ? adapters.space : undefined,
    adapterOutput: adapters ? adapters.output : undefined,
    baseModelForModels: method.baseModel.models,
  };
}

/** base_model for a data-driven method: required as soon as either input kind needs it. */
function baseModelUse(method: MergeMethod) {
  if (method.kind === 'tensor') return method.baseModel;
  if (method.kind === 'adapter') return 'none' as const;
  return method.baseModel.models === 'none' ? ('optional' as const) : method.baseModel.models;
}

function describeMethod(method: MergeMethod) {
  return {
    name: method.name,
    kind: method.kind,
    description: method.description,
    paper: method.paper,
    notes: method.notes,
    baseModel: baseModelUse(method),
    random: method.kind === 'adapter' ? false : method.random,
    minModels: method.kind === 'adapter' ? undefined : method.minModels,
    maxModels: method.kind === 'tensor' ? method.maxModels : undefined,
    parameters: method.parameters.map((parameter) => ({
      ...parameter,
      enum: parameter.enum ? [...parameter.enum] : undefined,
      range: parameter.range ? { ...parameter.range, text: describeRange(parameter.range) } : undefined,
    })),
    data: dataNeeds(method),
    parameterRule: method.parameterRule,
  };
}

const methodRoutes: FastifyPluginAsyncTypebox = async (app) => {
  app.get(
    '/methods',
    {
      schema: {
        tags: ['merges'],
        summary: 'Every merge method with its parameters',
        response: { 200: MethodList },
      },
    },
    async () => ({ items: MERGE_METHODS.map(describeMethod) }),
  );
};

export default methodRoutes;
