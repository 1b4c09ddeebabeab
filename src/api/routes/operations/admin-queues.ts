// The operator dashboard at /admin/queues: bull-board over every job queue and the webhook queue (jobs by
// state, their data, logs and errors; retry, promote and clean). Every request, its assets included, passes the
// admin gate first; its routes stay out of the OpenAPI document (they are bull-board's, not the API's).
import { createBullBoard } from '@bull-board/api';
import { BullMQAdapter } from '@bull-board/api/bullMQAdapter';
import { FastifyAdapter } from '@bull-board/fastify';
import type { FastifyPluginAsync } from 'fastify';
import { type JobType, QUEUE_NAMES } from '../../../queue/index.ts';
import { PROBLEM_CONTENT_TYPE, problemBody, toProblem } from '../../errors.ts';
import { ADMIN_QUEUES_PATH } from './admin-path.ts';

const adminQueues: FastifyPluginAsync = async (app) => {
  const serverAdapter = new FastifyAdapter();
  serverAdapter.setBasePath(ADMIN_QUEUES_PATH);
  createBullBoard({
    queues: [
      ...(Object.keys(QUEUE_NAMES) as JobType[]).map((type) => new BullMQAdapter(app.jobs.queue(type))),
      new BullMQAdapter(app.jobs.webhookQueue(), { readOnlyMode: true }),
    ],
    serverAdapter,
    options: { uiConfig: { boardTitle: 'lorafuse' } },
  });
  app.addHook('onRoute', (route) => {
    route.schema = { ...route.schema, hide: true };
  });
  // bull-board's own error handler would turn a refusal into a 500: the problem is answered here.
  app.addHook('onRequest', async (request, reply) => {
    try {
      await app.authorizeAdmin(request);
    } catch (error) {
      const problem = toProblem(error);
      if (!problem) throw error;
      return reply.code(problem.status).type(PROBLEM_CONTENT_TYPE).send(problemBody(problem, request.url));
    }
  });
  await app.register(serverAdapter.registerPlugin(), { prefix: ADMIN_QUEUES_PATH });
};

export default adminQueues;
