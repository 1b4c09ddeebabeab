// What every job-creating route shares: the Idempotency-Key header (documented and checked the
// same way) and the answer, 202 for a new job or 200 for the one an earlier request made.
import type { FastifyReply, FastifyRequest } from 'fastify';
import { Type } from 'typebox';
import type { JobView } from '../../../queue/index.ts';
import { ApiProblem } from '../../errors.ts';

const MAX_IDEMPOTENCY_KEY = 200;

export const IdempotencyHeaders = {
  type: 'object',
  properties: { 'idempotency-key': { type: 'string', minLength: 1, maxLength: MAX_IDEMPOTENCY_KEY } },
} as const;

export const JobCreatedResponses = {
  200: Type.Ref('Job', { description: 'The job an earlier request with this Idempotency-Key created.' }),
  202: Type.Ref('Job', { description: 'Queued.' }),
};

export function idempotencyKeyOf(request: FastifyRequest): string | undefined {
  const key = request.headers['idempotency-key'];
  if (Array.isArray(key) || (key !== undefined && key.length > MAX_IDEMPOTENCY_KEY)) {
    throw new ApiProblem(
      'invalid-request',
      `Idempotency-Key must be one value of at most ${MAX_IDEMPOTENCY_KEY} characters`,
    );
  }
  return key || undefined;
}

export function sendJob(reply: FastifyReply, job: JobView, created: boolean): FastifyReply {
  return reply
    .code(created ? 202 : 200)
    .header('location', `/v1/jobs/${job.id}`)
    .send(job);
}
