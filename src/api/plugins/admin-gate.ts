// The gate of the admin surfaces (/admin/queues, webhook delivery logs): one hook the deployment points at its
// authorization (an API key's admin scope). Without one, they answer 403 unless LORAFUSE_ADMIN_OPEN is true,
// which is for a developer's own machine: a service is never open to admin actions by default.
import type { FastifyRequest } from 'fastify';
import fp from 'fastify-plugin';
import { ApiProblem } from '../errors.ts';

/** Resolves when the request may use admin surfaces; throws (an ApiProblem: 401, 403, ...) to refuse. */
export type AuthorizeAdmin = (request: FastifyRequest) => Promise<void>;

declare module 'fastify' {
  interface FastifyInstance {
    authorizeAdmin: AuthorizeAdmin;
    /** False when every admin request would be refused (no hook, not open): the dashboard is then not loaded. */
    adminSurfacesEnabled: boolean;
  }
}

export default fp<{ authorize?: AuthorizeAdmin; open: boolean }>(
  async (app, options) => {
    const refuse: AuthorizeAdmin = async () => {
      throw new ApiProblem(
        'admin-disabled',
        'admin surfaces need an admin authorization; none is configured (LORAFUSE_ADMIN_OPEN=true opens them on a development machine)',
      );
    };
    app.decorate('authorizeAdmin', options.authorize ?? (options.open ? async () => undefined : refuse));
    app.decorate('adminSurfacesEnabled', options.authorize !== undefined || options.open);
  },
  { name: 'lorafuse-admin-gate', fastify: '5.x' },
);
