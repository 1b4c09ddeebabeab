// Hosts one queue's worker: BullMQ runs each job in a forked child that imports the .ts processor
// through tsx, so no build step is needed. Closing lets active jobs finish within a grace period;
// past it the process may exit and the job is recovered as stalled by another worker.
import { Worker } from 'bullmq';
import type { Redis } from 'ioredis';
import type { Logger } from 'pino';
import { createWorkerRedis, type JobType, QUEUE_NAMES } from '../src/queue/index.ts';
import type { RedisDeployment } from '../src/config.ts';
import type { WorkerSettings } from './worker-settings.ts';

export interface QueueWorkerOptions {
  redisUrl: string;
  /** Sentinel or Cluster (the sandboxed children read it from the environment they inherit). */
  deployment?: RedisDeployment;
  prefix: string;
  dataDir: string;
  concurrency: number;
  settings: WorkerSettings;
  logger?: Logger;
}

export interface QueueWorkerHandle {
  worker: Worker;
  /** Stops taking jobs; resolves when active jobs finished, or with `false` once `graceMs` passed. */
  close(graceMs?: number): Promise<boolean>;
}

/** The child must load TypeScript whatever way the parent was started (tsx CLI, --import, bin). */
const TSX_LOADER = import.meta.resolve('tsx');

export function startQueueWorker(
  type: JobType,
  processor: URL,
  options: QueueWorkerOptions,
): QueueWorkerHandle {
  let lastError = 0;
  const connection: Redis = createWorkerRedis(
    options.redisUrl,
    (error) => {
      if (Date.now() - lastError < 10_000) return;
      lastError = Date.now();
      options.logger?.warn({ err: error.message }, `${type} worker: Redis connection error (retrying)`);
    },
    options.deployment,
  );
  const worker = new Worker(QUEUE_NAMES[type], processor, {
    connection,
    prefix: options.prefix,
    concurrency: options.concurrency,
    lockDuration: options.settings.lockDurationMs,
    stalledInterval: options.settings.stalledIntervalMs,
    maxStalledCount: 1,
    useWorkerThreads: false,
    workerForkOptions: {
      execArgv: ['--import', TSX_LOADER],
      env: {
        ...process.env,
        REDIS_URL: options.redisUrl,
        LORAFUSE_DATA_DIR: options.dataDir,
        LORAFUSE_QUEUE_PREFIX: options.prefix,
      },
    },
  });
  const log = options.logger;
  worker.on('active', (job) => log?.info({ jobId: job.id }, `${type} job started`));
  worker.on('completed', (job, result) => log?.info({ jobId: job.id, result }, `${type} job completed`));
  worker.on('failed', (job, error) =>
    log?.warn({ jobId: job?.id, attempt: job?.attemptsMade, err: error.message }, `${type} job failed`),
  );
  worker.on('error', (error) => log?.error({ err: error.message }, `${type} worker error`));

  let closed: Promise<boolean> | undefined;
  return {
    worker,
    close(graceMs = options.settings.shutdownGraceMs) {
      closed ??= (async () => {
        let timer: NodeJS.Timeout | undefined;
        const graceful = worker.close().then(() => true);
        const expired = new Promise<boolean>((resolve) => {
          timer = setTimeout(() => resolve(false), graceMs);
        });
        const finished = await Promise.race([graceful, expired]);
        clearTimeout(timer);
        if (finished) connection.disconnect();
        return finished;
      })();
      return closed;
    },
  };
}
