// The pieces the serve, worker, dev and demo commands assemble: the HTTP API over a store and a
// job service, and the queue workers. Each returns a handle whose close() undoes exactly its start.
import type { FastifyServerOptions } from 'fastify';
import type { IncomingMessage, ServerResponse } from 'node:http';
import pino, { type Logger } from 'pino';
import { buildApp, closeApp, type LorafuseApp, loggerOptions } from '../api/index.ts';
import { type Config, loadRuntimeSettings, type WorkerPlan } from '../config.ts';
import { createApiRedis, JobService } from '../queue/index.ts';
import { ArtifactStore, createBlobStore } from '../store/index.ts';
import { startAnalyzeWorker } from '../../workers/analyze-worker.ts';
import { startEvaluateWorker } from '../../workers/evaluate-worker.ts';
import { startFinetuneWorker } from '../../workers/finetune-worker.ts';
import { startMergeWorker } from '../../workers/merge-worker.ts';
import type { QueueWorkerHandle } from '../../workers/queue-worker.ts';
import { startWebhookWorker, type WebhookWorkerHandle } from '../../workers/webhook-worker.ts';
import { loadTrainingRuntimes, loadWorkerSettings } from '../../workers/worker-settings.ts';

export interface RunningApi {
  app: LorafuseApp;
  /** http://host:port the API listens on. */
  url: string;
  /**
   * Stops listening and lets in-flight requests finish. Past `graceMs`, requests whose body is still
   * arriving (a stalled upload) are cut, so a stalled client cannot hold the shutdown (its upload is
   * discarded: the store waits for that); requests received whole may answer for another `graceMs`.
   */
  close(graceMs?: number): Promise<void>;
}

export function createLogger(config: Config): Logger {
  return pino(loggerOptions(config.logLevel));
}

/** Logs Redis connection errors at most every 10 s: ioredis retries on its own, often. */
export function redisErrorLogger(logger: Logger | undefined, what: string): (error: Error) => void {
  let last = 0;
  return (error) => {
    if (!logger || Date.now() - last < 10_000) return;
    last = Date.now();
    logger.warn({ err: error.message }, `${what}: Redis connection error (retrying)`);
  };
}

export async function startApi(
  config: Config,
  redisUrl: string,
  logger: FastifyServerOptions['logger'] = loggerOptions(config.logLevel),
): Promise<RunningApi> {
  const errorLog = logger === false ? undefined : createLogger(config);
  const redisErrors = (what: string) => redisErrorLogger(errorLog, what);
  const redis = createApiRedis(redisUrl, redisErrors('api'), config.redis);
  // BullMQ on a connection of its own, without auto-pipelining (JobService says why); the service closes it.
  const queueRedis = createApiRedis(redisUrl, redisErrors('api queues'), config.redis, {
    autoPipelining: false,
  });
  try {
    // The API's store plugin runs store.init() (once, as the app starts).
    const store = new ArtifactStore({
      redis,
      dataDir: config.dataDir,
      prefix: config.queuePrefix,
      blobs: createBlobStore(config),
    });
    const jobs = new JobService({
      redis,
      prefix: config.queuePrefix,
      retention: config.jobRetention,
      webhooks: { attempts: config.webhooks.attempts, backoffMs: config.webhooks.backoffMs },
      queueRedis,
    });
    const app = await buildApp({ config, redis, store, jobs, logger });
    const url = await app.listen({ port: config.port, host: config.host });
    const inFlight = new Set<IncomingMessage>();
    app.server.on('request', (request: IncomingMessage, response: ServerResponse) => {
      inFlight.add(request);
      response.once('close', () => inFlight.delete(request));
    });
    return {
      app,
      url,
      async close(graceMs?: number) {
        const timers: NodeJS.Timeout[] = [];
        if (graceMs !== undefined) {
          timers.push(
            setTimeout(() => {
              for (const request of inFlight) if (!request.complete) request.socket.destroy();
            }, graceMs),
            setTimeout(() => app.server.closeAllConnections(), 2 * graceMs),
          );
        }
        try {
          await closeApp(app);
        } finally {
          for (const timer of timers) clearTimeout(timer);
        }
      },
    };
  } catch (error) {
    redis.disconnect();
    queueRedis.disconnect();
    throw error;
  }
}

/** One worker per served queue (merge, finetune, evaluate, analyze), started and stopped together. */
export interface WorkerGroup {
  workers: QueueWorkerHandle[];
  /** Every worker process also delivers job webhooks. */
  webhooks: WebhookWorkerHandle;
  waitUntilReady(): Promise<void>;
  /** Stops every worker; `false` when one still had a job past the grace period. */
  close(graceMs?: number): Promise<boolean>;
}

/**
 * Workers for `plan.queues` (default: config.worker, from LORAFUSE_WORKER_QUEUES and
 * LORAFUSE_WORKER_CONCURRENCY), each running `plan.concurrency[queue]` jobs at once.
 */
export function startWorker(
  config: Config,
  redisUrl: string,
  logger?: Logger,
  plan: WorkerPlan = config.worker,
): WorkerGroup {
  // A bad LORAFUSE_TRAIN_RUNTIMES or LORAFUSE_RUNTIME_IDLE_MS fails here, not in the first fine-tune job.
  loadTrainingRuntimes();
  loadRuntimeSettings();
  const options = {
    redisUrl,
    deployment: config.redis,
    prefix: config.queuePrefix,
    dataDir: config.dataDir,
    settings: loadWorkerSettings(),
    webhooks: { attempts: config.webhooks.attempts, backoffMs: config.webhooks.backoffMs },
    logger,
  };
  const starters = {
    merge: () => startMergeWorker({ ...options, concurrency: plan.concurrency.merge }),
    finetune: () => startFinetuneWorker({ ...options, concurrency: plan.concurrency.finetune }),
    evaluate: () => startEvaluateWorker({ ...options, concurrency: plan.concurrency.evaluate }),
    analyze: () => startAnalyzeWorker({ ...options, concurrency: plan.concurrency.analyze }),
  };
  const workers = plan.queues.map((queue) => starters[queue]());
  const webhooks = startWebhookWorker({
    redisUrl,
    deployment: config.redis,
    prefix: config.queuePrefix,
    settings: config.webhooks,
    projectSecrets: config.access.authEnabled,
    logTtlSeconds: config.jobRetention.failed.age,
    logger,
  });
  return {
    workers,
    webhooks,
    async waitUntilReady() {
      await Promise.all(
        [...workers.map((handle) => handle.worker), webhooks.worker].map((w) => w.waitUntilReady()),
      );
    },
    async close(graceMs?: number) {
      const finished = await Promise.all(workers.map((handle) => handle.close(graceMs)));
      // Last: the queue workers' final jobs may still queue webhooks as they close.
      await webhooks.close();
      return finished.every(Boolean);
    },
  };
}
