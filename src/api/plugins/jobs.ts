// The job service (queues on Redis) the merge and job routes use; its queues close with the app.
import fp from 'fastify-plugin';
import type { JobService } from '../../queue/index.ts';

declare module 'fastify' {
  interface FastifyInstance {
    jobs: JobService;
  }
}

export default fp<{ jobs: JobService; close: boolean }>(
  async (app, options) => {
    app.decorate('jobs', options.jobs);
    app.addHook('onClose', async () => {
      if (options.close) await options.jobs.close();
    });
  },
  { name: 'lorafuse-jobs', fastify: '5.x', dependencies: ['lorafuse-redis'] },
);
