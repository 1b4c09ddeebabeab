// Schemas several resources share: the problem document and pagination.
import { Type } from 'typebox';

export const Problem = Type.Object(
  {
    type: Type.String({ description: 'A stable URI per kind of error.' }),
    title: Type.String(),
    status: Type.Integer(),
    detail: Type.Optional(Type.String()),
    instance: Type.Optional(Type.String()),
  },
  {
    $id: 'Problem',
    additionalProperties: true,
    description:
      'RFC 9457 problem details (application/problem+json); extension members such as errors, file, tensor, module.',
  },
);

export const ProblemRef = Type.Ref('Problem');

const problemResponse = {
  description: 'A problem document (RFC 9457).',
  content: { 'application/problem+json': { schema: ProblemRef } },
};

/** `{ 400: problem, 404: problem, ... }` for a route's response map, served as application/problem+json. */
export function problemResponses(...statuses: number[]): Record<number, typeof problemResponse> {
  return Object.fromEntries(statuses.map((status) => [status, problemResponse]));
}

export const PageQuery = Type.Object(
  {
    limit: Type.Integer({ minimum: 1, maximum: 100, default: 20, description: 'Items per page.' }),
    cursor: Type.Optional(
      Type.String({ minLength: 1, maxLength: 200, description: 'The nextCursor of the previous page.' }),
    ),
  },
  { additionalProperties: false },
);
