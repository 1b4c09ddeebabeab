// The artifact store every artifact route uses; its data directories are created at start.
import fp from 'fastify-plugin';
import type { ArtifactStore } from '../../store/index.ts';

declare module 'fastify' {
  interface FastifyInstance {
    store: ArtifactStore;
  }
}

export default fp<{ store: ArtifactStore }>(
  async (app, options) => {
    await options.store.init();
    app.decorate('store', options.store);
  },
  { name: 'lorafuse-store', fastify: '5.x', dependencies: ['lorafuse-redis'] },
);
