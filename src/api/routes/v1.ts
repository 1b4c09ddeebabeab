// The versioned API: every resource's routes, registered by app.ts under the `/v1` prefix (fastify/demo's
// shape), so a route file names only its own path and a `/v2` would be one more registration.
import type { FastifyPluginAsync } from 'fastify';
import accessRoutes from './access/index.ts';
import adapterRoutes from './adapters/index.ts';
import analysisRoutes from './analyses/index.ts';
import datasetRoutes from './datasets/index.ts';
import evaluationRoutes from './evaluations/index.ts';
import finetuneRoutes from './finetunes/index.ts';
import headRoutes from './heads/index.ts';
import jobRoutes from './jobs/index.ts';
import mergeRoutes from './merges/index.ts';
import methodRoutes from './methods/index.ts';
import modelRoutes from './models/index.ts';
import reportRoutes from './reports/index.ts';

const v1Routes: FastifyPluginAsync = async (app) => {
  await app.register(modelRoutes);
  await app.register(adapterRoutes);
  await app.register(datasetRoutes);
  await app.register(headRoutes);
  await app.register(reportRoutes);
  await app.register(mergeRoutes);
  await app.register(finetuneRoutes);
  await app.register(evaluationRoutes);
  await app.register(analysisRoutes);
  await app.register(jobRoutes);
  await app.register(methodRoutes);
  await app.register(accessRoutes);
};

export default v1Routes;
