// The report artifacts merge jobs write (report.json + report.html): list, get, delete, download. A job's own
// report is also at GET /v1/jobs/{id}/report and /report.html.
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { artifactReadRoutes } from '../artifacts/read-routes.ts';

const reportRoutes: FastifyPluginAsyncTypebox = async (app) => {
  await app.register(artifactReadRoutes, { kind: 'report', path: '/reports', tag: 'reports' });
};

export default reportRoutes;
