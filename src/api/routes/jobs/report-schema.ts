// report.json as a JSON Schema (TypeBox), the OpenAPI component `Report`: the same shape as
// src/eval/report/report-types.ts, which jobs write and report.html is rendered from.
import { Type } from 'typebox';

const Nullable = <T extends ReturnType<typeof Type.Number>>(schema: T) => Type.Union([schema, Type.Null()]);
const NullableNumber = Nullable(Type.Number());
const NullableString = Type.Union([Type.String(), Type.Null()]);
const NumberMap = Type.Record(Type.String(), Type.Number());
const Split = Type.Union([Type.Literal('validation'), Type.Literal('test'), Type.Literal('train')]);

const ReportEvaluation = Type.Object(
  {
    key: Type.String({ description: 'artifact|head|dataset: the evaluation cache key.' }),
    artifact: Type.String(),
    head: Type.String({ description: '`adapter:<id>`, `head:<id>`, `model:<id>` or `model`.' }),
    dataset: Type.String(),
    task: Type.String(),
    split: Split,
    examples: Type.Integer(),
    accuracy: Type.Number(),
    loss: Type.Number({ description: 'Mean cross-entropy.' }),
    predictions: Type.Array(Type.Integer(), { description: 'Argmax class per example, in dataset order.' }),
  },
  { description: 'One artifact read through one head over one dataset: the raw material of every number.' },
);

const SplitKeys = Type.Object({ validation: NullableString, test: NullableString });

const ReportTaskRow = Type.Object({
  task: Type.String(),
  head: Type.String(),
  merged: SplitKeys,
  reference: Type.Union([
    Type.Object({ artifact: Type.String(), validation: NullableString, test: NullableString }),
    Type.Null(),
  ]),
  base: Type.Union([SplitKeys, Type.Null()]),
  accuracy: NullableNumber,
  referenceAccuracy: NullableNumber,
  normalizedAccuracy: NullableNumber,
  validationAccuracy: NullableNumber,
  validationNormalizedAccuracy: NullableNumber,
});

const ReportSearch = Type.Object({
  grid: Type.Record(Type.String(), Type.Array(Type.Number())),
  points: Type.Array(
    Type.Object({
      params: NumberMap,
      job: NullableString,
      artifact: NullableString,
      validation: Type.Object({ averageAccuracy: Type.Number(), averageNormalizedAccuracy: NullableNumber }),
    }),
  ),
  chosen: Type.Integer({ description: 'Index into points of the chosen point.' }),
  selectedOn: Type.Literal('validation'),
});

const ReportAnalysis = Type.Object(
  {
    inputs: Type.Array(Type.String()),
    norms: Type.Array(Type.Number()),
    cosine: Type.Object({
      parameters: Type.Array(Type.Array(Type.Number())),
      delta: Type.Optional(Type.Array(Type.Array(Type.Number()))),
    }),
    meanOffDiagonalCosine: Type.Number(),
    signConflict: Type.Array(Type.Object({ layer: Type.String(), rate: Type.Number() })),
  },
  { additionalProperties: true },
);

export const Report = Type.Object(
  {
    schemaVersion: Type.Literal(1),
    kind: Type.Union([
      Type.Literal('merge'),
      Type.Literal('search'),
      Type.Literal('analysis'),
      Type.Literal('study'),
    ]),
    title: Type.String(),
    createdAt: Type.String({ format: 'date-time' }),
    job: NullableString,
    answer: Type.Object({
      summary: Type.String({
        description: 'The one-line answer: what to ship and its average normalized accuracy.',
      }),
      artifact: NullableString,
      method: NullableString,
      params: Type.Union([NumberMap, Type.Null()]),
      averageNormalizedAccuracy: NullableNumber,
    }),
    tasks: Type.Array(ReportTaskRow),
    averages: Type.Object({
      accuracy: NullableNumber,
      normalizedAccuracy: NullableNumber,
      validationAccuracy: NullableNumber,
      validationNormalizedAccuracy: NullableNumber,
    }),
    evaluations: Type.Array(ReportEvaluation),
    search: Type.Optional(ReportSearch),
    analysis: Type.Optional(ReportAnalysis),
    analyses: Type.Optional(
      Type.Array(Type.Object({ title: Type.String(), analysis: ReportAnalysis }), {
        description: 'Several analyses side by side (a study: one per fine-tuning mode).',
      }),
    ),
    learned: Type.Optional(Type.Record(Type.String(), Type.Unknown())),
    tables: Type.Optional(
      Type.Array(
        Type.Object({
          title: Type.String(),
          columns: Type.Array(Type.String()),
          rows: Type.Array(Type.Array(Type.Union([Type.String(), Type.Number(), Type.Null()]))),
        }),
      ),
    ),
    recipe: Type.Union([Type.Record(Type.String(), Type.Unknown()), Type.Null()]),
    lineage: Type.Record(Type.String(), Type.Unknown()),
    timings: NumberMap,
    versions: Type.Record(Type.String(), Type.String()),
  },
  {
    $id: 'Report',
    description:
      'report.json: every accuracy in it is reproducible from `evaluations` (predictions) and the datasets’ labels.',
  },
);
