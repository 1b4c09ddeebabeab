// The artifact store every artifact route uses; its data directories (or bucket) are readied at
// start and its blob store's connections released when the app owns it and closes. Beside it, the
// process's cache of safetensors headers that checks before queueing read (blobs never change).
import fp from 'fastify-plugin';
import { type ArtifactStore, HeaderCache } from '../../store/index.ts';

declare module 'fastify' {
  interface FastifyInstance {
    store: ArtifactStore;
    headerCache: HeaderCache;
  }
}

export default fp<{ store: ArtifactStore; close?: boolean }>(
  async (app, options) => {
    await options.store.init();
    app.decorate('store', options.store);
    app.decorate('headerCache', new HeaderCache());
    if (options.close) app.addHook('onClose', () => options.store.close());
  },
  { name: 'lorafuse-store', fastify: '5.x', dependencies: ['lorafuse-redis'] },
);
