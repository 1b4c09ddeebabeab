// The lorafuse HTTP API as a Fastify plugin (fastify/demo's shape): shared things are decorators of named
// plugins, the resource routes live one folder each under the `/v1` prefix, health and docs at the root, and
// every error is a problem document. buildApp makes the server around it; the CLI only listens and closes.
import { randomUUID } from 'node:crypto';
import multipart from '@fastify/multipart';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import Fastify, { type FastifyInstance, type FastifyServerOptions } from 'fastify';
import fp from 'fastify-plugin';
import type { Redis } from 'ioredis';
import type { Config } from '../config.ts';
import { recipeJsonSchema } from '../merge/index.ts';
import type { JobService } from '../queue/index.ts';
import { type ArtifactStore, projectWebhookSecrets } from '../store/index.ts';
import { secretFromConfig, type WebhookSecretSource } from '../webhooks/index.ts';
import { loggerOptions } from './logger.ts';
import adminGatePlugin, { type AuthorizeAdmin } from './plugins/admin-gate.ts';
import authPlugin, { requireAdminScope } from './plugins/auth.ts';
import configPlugin from './plugins/config.ts';
import jobsPlugin from './plugins/jobs.ts';
import metricsPlugin from './plugins/metrics.ts';
import openapiPlugin from './plugins/openapi.ts';
import problemsPlugin from './plugins/problems.ts';
import redisPlugin from './plugins/redis.ts';
import routeTablePlugin from './plugins/route-table.ts';
import webhooksPlugin from './plugins/webhooks.ts';
import securityPlugin from './plugins/security.ts';
import storePlugin from './plugins/store.ts';
import { Artifact } from './routes/artifacts/schemas.ts';
import healthRoutes from './routes/health/index.ts';
import operationsRoutes from './routes/operations/index.ts';
import { Report } from './routes/jobs/report-schema.ts';
import { Job } from './routes/jobs/schemas.ts';
import v1Routes from './routes/v1.ts';
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
  /**
   * The gate of the admin surfaces (/admin/queues, GET /v1/jobs/{id}/webhooks): resolve to allow, throw an
   * ApiProblem to refuse. Default: refused (403 admin-disabled) unless config.operations.adminOpen.
   */
  authorizeAdmin?: AuthorizeAdmin;
  /** A project's webhook secret, checked when a job asks for a callback_url. Default: LORAFUSE_WEBHOOK_SECRET for the default project. */
  webhookSecret?: WebhookSecretSource;
}

export type LorafuseApp = FastifyInstance;

const REQUEST_ID = /^[A-Za-z0-9._:-]{1,128}$/;

/** The prefix of every resource route; health (/healthz, /readyz) and docs (/docs, /openapi.json) stay at the root. */
export const API_PREFIX = '/v1';

/**
 * The whole API as one plugin: register it on any Fastify server built with serverOptions(deps). Not
 * encapsulated (fastify-plugin), so its decorators (store, jobs, routeTable) are the server's.
 */
export const lorafuseApi = fp<AppDependencies>(
  async (app, deps) => {
    const close = deps.closeDependencies ?? true;
    app.addHook('onRequest', async (request, reply) => {
      reply.header('x-request-id', request.id);
    });

    app.addSchema(Problem);
    app.addSchema(Artifact);
    app.addSchema(Job);
    app.addSchema(Report);
    // One component for the recipe, which POST /v1/merges documents under two media types.
    app.addSchema({ ...recipeJsonSchema, $id: 'Recipe' });

    await app.register(routeTablePlugin);
    await app.register(problemsPlugin);
    await app.register(configPlugin, { config: deps.config });
    await app.register(redisPlugin, { redis: deps.redis, close });
    await app.register(storePlugin, { store: deps.store, close });
    await app.register(jobsPlugin, { jobs: deps.jobs, close });
    // Headers and CORS first, so that a refused request carries them too; then who calls (request.principal,
    // request.store, request.jobs); the rate limit counts per key after that (preParsing).
    await app.register(securityPlugin, { settings: deps.config.access, prefix: deps.config.queuePrefix });
    await app.register(authPlugin, { settings: deps.config.access, prefix: deps.config.queuePrefix });
    const { authEnabled } = deps.config.access;
    await app.register(adminGatePlugin, {
      // With keys on, the auth hook has already required the admin scope of every admin route.
      authorize: deps.authorizeAdmin ?? (authEnabled ? requireAdminScope : undefined),
      open: deps.config.operations.adminOpen,
    });
    await app.register(metricsPlugin);
    await app.register(webhooksPlugin, {
      secret:
        deps.webhookSecret ??
        (authEnabled
          ? projectWebhookSecrets(deps.redis, deps.config.queuePrefix, deps.config.webhooks.secret)
          : secretFromConfig(deps.config.webhooks)),
    });
    await app.register(multipart, {
      limits: {
        fileSize: deps.config.uploads.maxFileBytes,
        files: deps.config.uploads.maxFiles,
      },
    });
    await app.register(openapiPlugin);

    await app.register(healthRoutes);
    await app.register(operationsRoutes);
    await app.register(v1Routes, { prefix: API_PREFIX });
  },
  { name: 'lorafuse-api', fastify: '5.x' },
);

/** The server options the API needs: logger, request ids, body limit, Ajv settings. */
export function serverOptions(deps: AppDependencies): FastifyServerOptions {
  return {
    logger: deps.logger ?? loggerOptions(deps.config.logLevel),
    // A caller's x-request-id is honoured when it looks like an id; otherwise we make one.
    genReqId: (request) => {
      const sent = request.headers['x-request-id'];
      return typeof sent === 'string' && REQUEST_ID.test(sent) ? sent : randomUUID();
    },
    // JSON bodies are recipes and requests: small. Uploads are multipart, limited per part in lorafuseApi.
    bodyLimit: deps.config.uploads.maxJsonBodyBytes,
    ajv: { customOptions: { removeAdditional: false, coerceTypes: 'array', useDefaults: true } },
    // A connection silent this long (an upload that stopped sending) is cut; the upload's error path then
    // removes its staging files. The whole-request limit bounds a trickling client.
    connectionTimeout: deps.config.access.idleTimeoutMs,
    requestTimeout: deps.config.access.requestTimeoutMs,
  };
}

/** A ready server with the API registered (the CLI listens on it; tests inject into it). */
export async function buildApp(deps: AppDependencies): Promise<LorafuseApp> {
  const app = Fastify(serverOptions(deps)).withTypeProvider<TypeBoxTypeProvider>();
  await app.register(lorafuseApi, deps);
  await app.ready();
  return app;
}

/** Stops accepting requests, lets in-flight ones finish, then closes the store's and queues' connections. */
export async function closeApp(app: LorafuseApp): Promise<void> {
  await app.close();
}
