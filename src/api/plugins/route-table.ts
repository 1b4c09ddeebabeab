// Records every route as it is registered, so that tests (and operators) can compare the routes
// Fastify serves with the OpenAPI document.
import fp from 'fastify-plugin';

export interface RouteEntry {
  method: string;
  url: string;
  /** false for routes kept out of the OpenAPI document (the docs UI's own routes). */
  documented: boolean;
}

declare module 'fastify' {
  interface FastifyInstance {
    routeTable: RouteEntry[];
  }
}

export default fp(
  async (app) => {
    const table: RouteEntry[] = [];
    app.decorate('routeTable', table);
    app.addHook('onRoute', (route) => {
      const methods = Array.isArray(route.method) ? route.method : [route.method];
      const schema = route.schema as { hide?: boolean } | undefined;
      for (const method of methods) {
        table.push({ method, url: route.url, documented: schema?.hide !== true && method !== 'HEAD' });
      }
    });
  },
  { name: 'lorafuse-route-table', fastify: '5.x' },
);
