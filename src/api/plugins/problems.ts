// The central error handler and the 404 handler: every error leaves as application/problem+json,
// and a 5xx never carries the internal message (it is logged with the request id instead).
import fp from 'fastify-plugin';
import {
  ApiProblem,
  internalProblem,
  PROBLEM_CONTENT_TYPE,
  PUBLIC_SERVER_PROBLEMS,
  problemBody,
  REDIS_RETRY_AFTER_SECONDS,
  toProblem,
} from '../errors.ts';

export default fp(
  async (app) => {
    app.setErrorHandler((error, request, reply) => {
      let problem = toProblem(error);
      if (problem === null || problem.status >= 500) {
        request.log.error({ err: error }, 'request failed');
        problem = problem && PUBLIC_SERVER_PROBLEMS.has(problem.kind) ? problem : internalProblem();
      } else {
        request.log.info({ problem: problem.kind, detail: problem.message }, 'request rejected');
      }
      // An upload refused part-way leaves its body unread: close the connection rather than read on.
      if (!request.raw.readableEnded) reply.header('connection', 'close');
      if (problem.kind === 'dependency-unavailable')
        reply.header('retry-after', String(REDIS_RETRY_AFTER_SECONDS));
      reply.code(problem.status).type(PROBLEM_CONTENT_TYPE).send(problemBody(problem, request.url));
    });

    app.setNotFoundHandler((request, reply) => {
      const problem = new ApiProblem(
        'not-found',
        `no route for ${request.method} ${request.url.split('?')[0]}`,
      );
      reply.code(404).type(PROBLEM_CONTENT_TYPE).send(problemBody(problem, request.url));
    });
  },
  { name: 'lorafuse-problems', fastify: '5.x' },
);
