// The job as clients read it (src/queue/contract.ts JobView).
import { Type } from 'typebox';

const JobStateSchema = Type.Union(
  [
    Type.Literal('queued'),
    Type.Literal('active'),
    Type.Literal('completed'),
    Type.Literal('failed'),
    Type.Literal('cancelled'),
  ],
  { description: 'queued -> active -> completed | failed | cancelled' },
);

const JobTypeSchema = Type.Union([
  Type.Literal('merge'),
  Type.Literal('finetune'),
  Type.Literal('evaluate'),
  Type.Literal('analyze'),
]);

const FreeObject = Type.Object({}, { additionalProperties: true });

export const Job = Type.Object(
  {
    id: Type.String(),
    type: JobTypeSchema,
    state: JobStateSchema,
    progress: Type.Union([FreeObject, Type.Null()]),
    result: Type.Union([FreeObject, Type.Null()]),
    error: Type.Union([
      Type.Object({
        type: Type.String(),
        message: Type.String(),
        correlationId: Type.Optional(
          Type.String({ description: 'internal errors only: the id the worker logged the details under' }),
        ),
      }),
      Type.Null(),
    ]),
    recipe: Type.Union([FreeObject, Type.Null()]),
    attempts: Type.Integer(),
    createdAt: Type.String({ format: 'date-time' }),
    startedAt: Type.Union([Type.String({ format: 'date-time' }), Type.Null()]),
    finishedAt: Type.Union([Type.String({ format: 'date-time' }), Type.Null()]),
    cancelRequested: Type.Optional(Type.Boolean({ description: 'A cancel was asked of a running job.' })),
  },
  { $id: 'Job' },
);

export const JobRef = Type.Ref('Job');

export const JobParams = Type.Object({ id: Type.String({ minLength: 1, maxLength: 100 }) });

export const JobListQuery = Type.Object(
  {
    state: Type.Optional(JobStateSchema),
    type: Type.Optional(JobTypeSchema),
    limit: Type.Integer({ minimum: 1, maximum: 100, default: 20 }),
    cursor: Type.Optional(Type.String({ minLength: 1, maxLength: 200 })),
  },
  { additionalProperties: false },
);

export const JobPage = Type.Object({
  items: Type.Array(JobRef),
  nextCursor: Type.Union([Type.String(), Type.Null()]),
});
