// GET /v1/jobs, GET /v1/jobs/:id and DELETE /v1/jobs/:id (cancel).
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { FastifyRequest } from 'fastify';
import { Type } from 'typebox';
import { readFile } from 'node:fs/promises';
import { discardPublications } from '../../../queue/index.ts';
import { REPORT_HTML, REPORT_JSON } from '../../../store/index.ts';
import { ApiProblem } from '../../errors.ts';
import { problemResponses } from '../../schemas.ts';
import jobEventRoutes from './events.ts';
import { JobListQuery, JobPage, JobParams } from './schemas.ts';
import webhookLogRoutes from './webhook-log.ts';

const jobRoutes: FastifyPluginAsyncTypebox = async (app) => {
  await app.register(jobEventRoutes);
  await app.register(webhookLogRoutes);
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
    async (request) => request.jobs.list(request.query),
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
      const job = await request.jobs.get(request.params.id);
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
      const job = await request.jobs.cancel(request.params.id);
      // Cancelled while queued (say, waiting for its retry after a killed attempt): no attempt runs again to
      // delete what a killed one published, so it goes now.
      if (job.state === 'cancelled')
        await discardPublications(app.redis, app.jobs.prefix, job.id, request.store).catch(() => undefined);
      return reply.code(job.state === 'cancelled' ? 200 : 202).send(job);
    },
  );

  /** The report file a job's result names; 404 until the job completed with one. */
  async function reportFile(request: FastifyRequest, id: string, name: string): Promise<string> {
    const job = await request.jobs.get(id);
    if (!job) throw new ApiProblem('job-not-found', `no job with id ${id}`, { id });
    // A merge names its report beside its artifact; an analysis's artifact is the report.
    const result = job.result as {
      report?: { id?: string };
      artifact?: { kind?: string; id?: string };
    } | null;
    const reportId =
      result?.report?.id ?? (result?.artifact?.kind === 'report' ? result.artifact.id : undefined);
    const record = reportId ? await request.store.get(reportId) : null;
    if (!record) {
      throw new ApiProblem(
        'report-not-found',
        job.state === 'completed'
          ? `job ${id} wrote no report (a merge needs an evaluation block)`
          : `job ${id} is ${job.state}: its report exists once it completed`,
        { id, state: job.state },
      );
    }
    const file = request.store.filePaths(record)[name];
    if (!file) throw new ApiProblem('report-not-found', `report ${record.id} has no ${name}`, { id });
    return file;
  }

  app.get(
    '/jobs/:id/report',
    {
      schema: {
        tags: ['jobs'],
        summary: "The job's report.json",
        description:
          'Of a merge with evaluation or search, or of an analysis: per task accuracy, loss, reference and normalized accuracy, averages, the search grid, the raw predictions and timings. The report is also an artifact of its own (result.report, /v1/reports/{id}).',
        params: JobParams,
        response: { 200: Type.Ref('Report', { description: 'report.json.' }), ...problemResponses(404) },
      },
    },
    async (request, reply) => {
      const json = await readFile(await reportFile(request, request.params.id, REPORT_JSON), 'utf8');
      return reply.type('application/json').send(json);
    },
  );

  app.get(
    '/jobs/:id/report.html',
    {
      schema: {
        tags: ['jobs'],
        summary: "The job's report.html",
        description:
          'A self-contained page (no script, no external resource): the answer line and the per-task table.',
        params: JobParams,
        produces: ['text/html'],
        response: {
          200: Type.String({ description: 'report.html' }),
          ...problemResponses(404),
        },
      },
    },
    async (request, reply) => {
      const html = await readFile(await reportFile(request, request.params.id, REPORT_HTML), 'utf8');
      return reply.type('text/html; charset=utf-8').send(html);
    },
  );
};

export default jobRoutes;
