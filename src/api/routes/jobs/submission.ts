// What every job-creating route shares: the Idempotency-Key header (documented and checked the
// same way) and the answer, 202 for a new job or 200 for the one an earlier request made.
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { Type } from 'typebox';
import {
  DEFAULT_PROJECT,
  type JobCallback,
  type JobType,
  type JobView,
  type SubmitOptions,
} from '../../../queue/index.ts';
import { CallbackUrlError, MAX_CALLBACK_URL_LENGTH, validateCallbackUrl } from '../../../webhooks/index.ts';
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

/** The `callback_url` member every job request may carry (documented once, here). */
export const CallbackUrlProperty = Type.Optional(
  Type.String({
    minLength: 1,
    maxLength: MAX_CALLBACK_URL_LENGTH,
    description:
      'http(s) URL POSTed a signed JSON event when the job completes, fails or is cancelled (X-Lorafuse-Signature: HMAC-SHA256 over `<timestamp>.<body>` with the project webhook secret); retried with backoff. Non-public addresses are refused unless the deployment allows them.',
  }),
);

/**
 * The webhook fields of a job's payload, from the request's `callback_url`: a URL webhooks may go to, of a
 * project that has a webhook secret (422 otherwise). Empty when the request has none.
 */
export async function callbackOf(
  app: FastifyInstance,
  raw: unknown,
  project = DEFAULT_PROJECT,
): Promise<JobCallback> {
  if (raw === undefined || raw === null) return {};
  if (typeof raw !== 'string') throw new ApiProblem('invalid-callback-url', 'callback_url: must be a string');
  try {
    validateCallbackUrl(raw, { allowPrivateAddresses: app.config.webhooks.allowPrivateAddresses });
  } catch (error) {
    if (error instanceof CallbackUrlError) throw new ApiProblem('invalid-callback-url', error.message);
    throw error;
  }
  if (!(await app.webhookSecret(project))) {
    throw new ApiProblem(
      'webhooks-not-configured',
      `callback_url: project ${project} has no webhook secret (LORAFUSE_WEBHOOK_SECRET), so its webhooks could not be signed`,
    );
  }
  return project === DEFAULT_PROJECT ? { callbackUrl: raw } : { callbackUrl: raw, project };
}

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
    .header('location', `${reply.server.prefix}/jobs/${job.id}`)
    .send(job);
}

/**
 * Queues a job whose payload reads `inputs`, then checks they are still stored and not being deleted.
 * A DELETE racing with this request marks its artifact before looking for jobs that read it, so it
 * either sees this job (and answers 409) or is seen here: the job is cancelled and the request fails.
 */
export async function submitJob(
  request: FastifyRequest,
  type: JobType,
  payload: Parameters<FastifyInstance['jobs']['submit']>[1],
  inputs: readonly string[],
  options: SubmitOptions,
): Promise<{ job: JobView; created: boolean }> {
  // The caller's project's views: the job carries that project, and is found again only by it.
  const submitted = await request.jobs.submit(type, payload, options);
  if (!submitted.created) return submitted;
  const gone = await request.store.unavailable(inputs);
  if (gone.length > 0) {
    await request.jobs.cancel(submitted.job.id).catch(() => undefined);
    throw new ApiProblem('unknown-artifact', `deleted while the job was being queued: ${gone.join(', ')}`, {
      artifacts: gone,
    });
  }
  return submitted;
}
