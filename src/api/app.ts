// The lorafuse HTTP API as a Fastify app: shared things are decorators of named plugins, routes
// live one folder per resource, and every error is a problem document. server.ts (the CLI's)
// only builds it, listens and closes it.
import { randomUUID } from 'node:crypto';
import multipart from '@fastify/multipart';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import Fastify, { type FastifyInstance, type FastifyServerOptions } from 'fastify';
import type { Redis } from 'ioredis';
import type { Config } from '../config.ts';
import type { JobService } from '../queue/index.ts';
import type { ArtifactStore } from '../store/index.ts';
import { loggerOptions } from './logger.ts';
import configPlugin from './plugins/config.ts';
import jobsPlugin from './plugins/jobs.ts';
import openapiPlugin from './plugins/openapi.ts';
import problemsPlugin from './plugins/problems.ts';
import redisPlugin from './plugins/redis.ts';
import routeTablePlugin from './plugins/route-table.ts';
import storePlugin from './plugins/store.ts';
import adapterRoutes from './routes/adapters/index.ts';
import analysisRoutes from './routes/analyses/index.ts';
import datasetRoutes from './routes/datasets/index.ts';
import evaluationRoutes from './routes/evaluations/index.ts';
import finetuneRoutes from './routes/finetunes/index.ts';
import { Artifact } from './routes/artifacts/schemas.ts';
import healthRoutes from './routes/health/index.ts';
import { Job } from './routes/jobs/schemas.ts';
import jobRoutes from './routes/jobs/index.ts';
import mergeRoutes from './routes/merges/index.ts';
import methodRoutes from './routes/methods/index.ts';
import modelRoutes from './routes/models/index.ts';
import { Problem } from './schemas.ts';

export interface AppDependencies {
  config: Config;
  redis: Redis;
  store: ArtifactStore;
  jobs: JobService;
  /** Fastify logger options; default: pino at config.logLevel with secrets redacted. `false` for silence. */
  logger?: FastifyServerOptions['logger'];
  /** Close `jobs` and `redis` when the app closes (default true: the app owns what it is given). */
  closeDependencies?: boolean;
}

export type LorafuseApp = FastifyInstance;

const REQUEST_ID = /^[A-Za-z0-9._:-]{1,128}$/;

export async function buildApp(deps: AppDependencies): Promise<LorafuseApp> {
  const app = Fastify({
    logger: deps.logger ?? loggerOptions(deps.config.logLevel),
    // A caller's x-request-id is honoured when it looks like an id; otherwise we make one.
    genReqId: (request) => {
      const sent = request.headers['x-request-id'];
      return typeof sent === 'string' && REQUEST_ID.test(sent) ? sent : randomUUID();
    },
    // JSON bodies are recipes and requests: small. Uploads are multipart, limited per part below.
    bodyLimit: deps.config.uploads.maxJsonBodyBytes,
    ajv: { customOptions: { removeAdditional: false, coerceTypes: 'array', useDefaults: true } },
  }).withTypeProvider<TypeBoxTypeProvider>();

  const close = deps.closeDependencies ?? true;
  app.addHook('onRequest', async (request, reply) => {
    reply.header('x-request-id', request.id);
  });

  app.addSchema(Problem);
  app.addSchema(Artifact);
  app.addSchema(Job);

  await app.register(routeTablePlugin);
  await app.register(problemsPlugin);
  await app.register(configPlugin, { config: deps.config });
  await app.register(redisPlugin, { redis: deps.redis, close });
  await app.register(storePlugin, { store: deps.store });
  await app.register(jobsPlugin, { jobs: deps.jobs, close });
  await app.register(multipart, {
    limits: {
      fileSize: deps.config.uploads.maxFileBytes,
      files: deps.config.uploads.maxFiles,
    },
  });
  await app.register(openapiPlugin);

  await app.register(healthRoutes);
  await app.register(modelRoutes);
  await app.register(adapterRoutes);
  await app.register(datasetRoutes);
  await app.register(mergeRoutes);
  await app.register(finetuneRoutes);
  await app.register(evaluationRoutes);
  await app.register(analysisRoutes);
  await app.register(jobRoutes);
  await app.register(methodRoutes);

  await app.ready();
  return app;
}

/** Stops accepting requests, lets in-flight ones finish, then closes the store's and queues' connections. */
export async function closeApp(app: LorafuseApp): Promise<void> {
  await app.close();
}
