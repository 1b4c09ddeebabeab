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

const Method = Type.Object({
  name: Type.String(),
  kind: Type.Union([Type.Literal('tensor'), Type.Literal('adapter')], {
    description: 'tensor: mergekit-style per-tensor method; adapter: PEFT add_weighted_adapter-style.',
  }),
  description: Type.String(),
  paper: Type.Optional(Type.String()),
  notes: Type.Optional(Type.String()),
  baseModel: Type.Union([Type.Literal('required'), Type.Literal('optional'), Type.Literal('none')]),
  random: Type.Boolean({ description: 'Draws random numbers: the recipe seed makes it reproducible.' }),
  minModels: Type.Optional(Type.Integer()),
  maxModels: Type.Optional(Type.Integer()),
  parameters: Type.Array(Parameter),
  parameterRule: Type.Optional(
    Type.String({ description: 'A rule across parameters, checked for every tensor before queueing.' }),
  ),
});

export const MethodList = Type.Object({ items: Type.Array(Method) });

function describeMethod(method: MergeMethod) {
  return {
    name: method.name,
    kind: method.kind,
    description: method.description,
    paper: method.paper,
    notes: method.notes,
    baseModel: method.kind === 'tensor' ? method.baseModel : ('none' as const),
    random: method.kind === 'tensor' ? method.random : false,
    minModels: method.kind === 'tensor' ? method.minModels : undefined,
    maxModels: method.kind === 'tensor' ? method.maxModels : undefined,
    parameters: method.parameters.map((parameter) => ({
      ...parameter,
      enum: parameter.enum ? [...parameter.enum] : undefined,
      range: parameter.range ? { ...parameter.range, text: describeRange(parameter.range) } : undefined,
    })),
    parameterRule: method.parameterRule,
  };
}

const methodRoutes: FastifyPluginAsyncTypebox = async (app) => {
  app.get(
    '/v1/methods',
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
