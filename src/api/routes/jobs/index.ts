// GET /v1/jobs, GET /v1/jobs/:id and DELETE /v1/jobs/:id (cancel).
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from 'typebox';
import { ApiProblem } from '../../errors.ts';
import { problemResponses } from '../../schemas.ts';
import { JobListQuery, JobPage, JobParams } from './schemas.ts';

const jobRoutes: FastifyPluginAsyncTypebox = async (app) => {
  app.get(
    '/jobs',
    {
      schema: {
        tags: ['jobs'],
        summary: 'List jobs, newest first',
        querystring: JobListQuery,
        response: { 200: JobPage, ...problemResponses(400) },
      },
    },
    async (request) => app.jobs.list(request.query),
  );

  app.get(
    '/jobs/:id',
    {
      schema: {
        tags: ['jobs'],
        summary: 'Get one job: state, progress, result, error, recipe and timings',
        params: JobParams,
        response: { 200: Type.Ref('Job', { description: 'The job.' }), ...problemResponses(404) },
      },
    },
    async (request) => {
      const job = await app.jobs.get(request.params.id);
      if (!job)
        throw new ApiProblem('job-not-found', `no job with id ${request.params.id}`, {
          id: request.params.id,
        });
      return job;
    },
  );

  app.delete(
    '/jobs/:id',
    {
      schema: {
        tags: ['jobs'],
        summary: 'Cancel a queued or running job',
        description:
          'A queued job is cancelled at once (200). A running job is asked to stop between tensors (202, cancelRequested: true).',
        params: JobParams,
        response: {
          200: Type.Ref('Job', { description: 'Cancelled (it was queued).' }),
          202: Type.Ref('Job', { description: 'Asked to stop (it is running).' }),
          ...problemResponses(404, 409),
        },
      },
    },
    async (request, reply) => {
      const job = await app.jobs.cancel(request.params.id);
      return reply.code(job.state === 'cancelled' ? 200 : 202).send(job);
    },
  );
};

export default jobRoutes;
