// Hosts the merge queue's worker: BullMQ runs each job in a forked child that imports the .ts
// processor through tsx, so no build step is needed. Closing lets active jobs finish within a
// grace period; past it the process may exit and the job is recovered as stalled by another worker.
import { Worker } from 'bullmq';
import type { Redis } from 'ioredis';
import type { Logger } from 'pino';
import { createWorkerRedis, QUEUE_NAMES } from '../src/queue/index.ts';
import type { WorkerSettings } from './worker-settings.ts';

export interface MergeWorkerOptions {
  redisUrl: string;
  prefix: string;
  dataDir: string;
  concurrency: number;
  settings: WorkerSettings;
  logger?: Logger;
}

export interface MergeWorkerHandle {
  worker: Worker;
  /** Stops taking jobs; resolves when active jobs finished, or with `false` once `graceMs` passed. */
  close(graceMs?: number): Promise<boolean>;
}

const PROCESSOR = new URL('./merge/processor.ts', import.meta.url);
/** The child must load TypeScript whatever way the parent was started (tsx CLI, --import, bin). */
const TSX_LOADER = import.meta.resolve('tsx');

export function startMergeWorker(options: MergeWorkerOptions): MergeWorkerHandle {
  let lastError = 0;
  const connection: Redis = createWorkerRedis(options.redisUrl, (error) => {
    if (Date.now() - lastError < 10_000) return;
    lastError = Date.now();
    options.logger?.warn({ err: error.message }, 'merge worker: Redis connection error (retrying)');
  });
  const worker = new Worker(QUEUE_NAMES.merge, PROCESSOR, {
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
  worker.on('active', (job) => log?.info({ jobId: job.id }, 'merge job started'));
  worker.on('completed', (job, result) => log?.info({ jobId: job.id, result }, 'merge job completed'));
  worker.on('failed', (job, error) =>
    log?.warn({ jobId: job?.id, attempt: job?.attemptsMade, err: error.message }, 'merge job failed'),
  );
  worker.on('error', (error) => log?.error({ err: error.message }, 'merge worker error'));

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
