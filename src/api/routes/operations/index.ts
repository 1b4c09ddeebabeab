// What operators watch, at the root beside /healthz: GET /metrics (Prometheus) and the queue dashboard under
// /admin/queues (bull-board, behind the admin gate).
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { FastifyRequest } from 'fastify';
import { Type } from 'typebox';
import { ADMIN_QUEUES_PATH } from './admin-path.ts';

const operationsRoutes: FastifyPluginAsyncTypebox = async (app) => {
  if (app.config.operations.metrics) {
    app.get(
      '/metrics',
      {
        schema: {
          tags: ['operations'],
          summary: 'Prometheus metrics',
          description:
            'Prometheus text format. This process: lorafuse_http_requests_total and lorafuse_http_request_duration_seconds (by method, route template and status), lorafuse_api_process_* and lorafuse_api_nodejs_* (CPU, memory, event loop, GC). The whole deployment, read from Redis: lorafuse_queue_jobs (by queue and state), lorafuse_job_duration_seconds (by type and outcome), lorafuse_merged_bytes_total, lorafuse_training_samples_per_second and lorafuse_training_jobs_total (by mode).',
          produces: ['text/plain'],
          response: { 200: Type.String({ description: 'Prometheus exposition format 0.0.4.' }) },
        },
      },
      async (_request, reply) => {
        const body = await app.metrics.metrics();
        return reply.type(app.metrics.contentType).send(body);
      },
    );
  }
  if (app.adminSurfacesEnabled) {
    // bull-board takes seconds to load on a busy machine: only when someone may open it.
    await app.register((await import('./admin-queues.ts')).default);
  } else {
    const refuse = async (request: FastifyRequest) => app.authorizeAdmin(request);
    app.get(`${ADMIN_QUEUES_PATH}`, { schema: { hide: true } }, refuse);
    app.all(`${ADMIN_QUEUES_PATH}/*`, { schema: { hide: true } }, refuse);
  }
};

export default operationsRoutes;
