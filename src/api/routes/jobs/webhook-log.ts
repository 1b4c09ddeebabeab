// GET /v1/jobs/:id/webhooks: the job's callback URL and every webhook delivery attempt (status, timing, error,
// next retry), oldest first. Behind the admin gate: it tells where a job's results are announced.
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from 'typebox';
import { readDeliveryLog } from '../../../webhooks/index.ts';
import { ApiProblem } from '../../errors.ts';
import { problemResponses } from '../../schemas.ts';
import { JobParams } from './schemas.ts';

const Attempt = Type.Object({
  deliveryId: Type.String({
    description: 'Also sent as X-Lorafuse-Delivery; the same for every attempt of one event.',
  }),
  event: Type.Union([
    Type.Literal('job.completed'),
    Type.Literal('job.failed'),
    Type.Literal('job.cancelled'),
  ]),
  attempt: Type.Integer({ minimum: 1 }),
  at: Type.String({ format: 'date-time' }),
  url: Type.String(),
  status: Type.Union([Type.Integer(), Type.Null()], {
    description: "The receiver's HTTP status; null: no answer.",
  }),
  outcome: Type.Union([Type.Literal('delivered'), Type.Literal('retrying'), Type.Literal('failed')]),
  durationMs: Type.Integer({ minimum: 0 }),
  error: Type.Union([Type.String(), Type.Null()]),
  nextAttemptAt: Type.Union([Type.String({ format: 'date-time' }), Type.Null()]),
});

const DeliveryLog = Type.Object({
  jobId: Type.String(),
  callbackUrl: Type.Union([Type.String(), Type.Null()]),
  deliveries: Type.Array(Attempt),
});

const webhookLogRoutes: FastifyPluginAsyncTypebox = async (app) => {
  app.get(
    '/jobs/:id/webhooks',
    {
      config: { scope: 'admin' },
      preHandler: async (request) => app.authorizeAdmin(request),
      schema: {
        tags: ['jobs'],
        summary: "The job's webhook delivery log",
        description:
          'Every delivery attempt of the webhooks the job sent (job.completed, job.failed or job.cancelled to its callback_url), oldest first: HTTP status, duration, error and when the next retry is due. Admin only.',
        params: JobParams,
        response: { 200: DeliveryLog, ...problemResponses(403, 404) },
      },
    },
    async (request) => {
      const { id } = request.params;
      const job = await request.jobs.get(id);
      if (!job) throw new ApiProblem('job-not-found', `no job with id ${id}`, { id });
      const deliveries = await readDeliveryLog(app.redis, app.jobs.prefix, id);
      const callbackUrl = (await app.jobs.callbackUrlOf(id)) ?? deliveries[0]?.url ?? null;
      return { jobId: id, callbackUrl, deliveries };
    },
  );
};

export default webhookLogRoutes;
