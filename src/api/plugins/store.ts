// The artifact store every artifact route uses; its data directories (or bucket) are readied at
// start and its blob store's connections released when the app owns it and closes.
import fp from 'fastify-plugin';
import type { ArtifactStore } from '../../store/index.ts';

declare module 'fastify' {
  interface FastifyInstance {
    store: ArtifactStore;
  }
}

export default fp<{ store: ArtifactStore; close?: boolean }>(
  async (app, options) => {
    await options.store.init();
    app.decorate('store', options.store);
    if (options.close) app.addHook('onClose', () => options.store.close());
  },
  { name: 'lorafuse-store', fastify: '5.x', dependencies: ['lorafuse-redis'] },
);
