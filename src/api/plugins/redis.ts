// The Redis connection the routes share (readiness checks); closed with the app.
import fp from 'fastify-plugin';
import type { Redis } from 'ioredis';

declare module 'fastify' {
  interface FastifyInstance {
    redis: Redis;
  }
}

export default fp<{ redis: Redis; close: boolean }>(
  async (app, options) => {
    app.decorate('redis', options.redis);
    app.addHook('onClose', async () => {
      if (options.close && options.redis.status !== 'end') await options.redis.quit().catch(() => undefined);
    });
  },
  { name: 'lorafuse-redis', fastify: '5.x' },
);
