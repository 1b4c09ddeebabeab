// Hosts one queue's worker: BullMQ runs each job in a forked child that imports the .ts processor
// through tsx, so no build step is needed. Closing lets active jobs finish within a grace period;
// past it the process may exit and the job is recovered as stalled by another worker.
import { type Job, Worker } from 'bullmq';
import type { Redis } from 'ioredis';
import type { Logger } from 'pino';
import {
  CANCELLED_REASON,
  createWorkerRedis,
  discardPublications,
  type FinetuneJobResult,
  type JobOutcomeExtras,
  JobOutcomes,
  type JobType,
  jobProject,
  type MergeJobResult,
  QUEUE_NAMES,
  type WebhookRetry,
} from '../src/queue/index.ts';
import type { RedisDeployment } from '../src/config.ts';
import { ArtifactStore } from '../src/store/index.ts';
import type { WorkerSettings } from './worker-settings.ts';

export interface QueueWorkerOptions {
  redisUrl: string;
  /** Sentinel or Cluster (the sandboxed children read it from the environment they inherit). */
  deployment?: RedisDeployment;
  prefix: string;
  dataDir: string;
  concurrency: number;
  settings: WorkerSettings;
  /** Retries of the webhooks this worker's finished jobs queue (default: 8 attempts from 2 s). */
  webhooks?: WebhookRetry;
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
  const outcomes = new JobOutcomes(connection, options.prefix, options.webhooks);
  const store = new ArtifactStore({ redis: connection, dataDir: options.dataDir, prefix: options.prefix });
  /** Outcome bookkeeping still running: closing waits for it, so no webhook is lost to a shutdown. */
  const pending = new Set<Promise<void>>();
  const track = (work: Promise<void>) => {
    const tracked = work.finally(() => pending.delete(tracked));
    pending.add(tracked);
  };
  /** Metrics and webhooks of a finished job; a failure here is logged, never fails the job. */
  const finished = async (
    job: Job,
    outcome: 'completed' | 'failed' | 'cancelled',
    extras: JobOutcomeExtras = {},
  ) => {
    try {
      await outcomes.record(type, job, outcome, extras);
    } catch (error) {
      log?.warn({ jobId: job.id, err: (error as Error).message }, 'job outcome not recorded');
    }
  };
  /** A job that ended without a result keeps nothing it published (src/queue/publications.ts). */
  const discardLeftovers = (job: Job) =>
    discardPublications(connection, options.prefix, job.id as string, store.forProject(jobProject(job.data)))
      .then((ids) => {
        if (ids.length > 0) log?.info({ jobId: job.id, artifacts: ids }, `${type} job's artifacts discarded`);
      })
      .catch((err: Error) => log?.warn({ jobId: job.id, err: err.message }, 'publications not discarded'));
  worker.on('active', (job) => log?.info({ jobId: job.id }, `${type} job started`));
  worker.on('completed', (job, result) => {
    log?.info({ jobId: job.id, result }, `${type} job completed`);
    track(extrasOf(type, result, store).then((extras) => finished(job, 'completed', extras)));
  });
  worker.on('failed', (job, error) => {
    log?.warn({ jobId: job?.id, attempt: job?.attemptsMade, err: error.message }, `${type} job failed`);
    // BullMQ sets finishedOn only when the job failed for good (no retry follows). A job that stalled too often
    // comes here too: the stalled checker only marks it, and the next worker to take it fails it (a deferred
    // failure), as test/workers/watching-jobs.test.ts shows with its job.failed webhook.
    if (job?.finishedOn) {
      track(finished(job, job.failedReason === CANCELLED_REASON ? 'cancelled' : 'failed'));
      track(discardLeftovers(job));
    }
  });
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
        const done = await Promise.race([graceful, expired]);
        clearTimeout(timer);
        await Promise.allSettled([...pending]);
        await outcomes.close();
        if (done) connection.disconnect();
        return done;
      })();
      return closed;
    },
  };
}

/** Bytes a merge wrote (its artifact's files) and a fine-tune's samples/s, for the job metrics. */
async function extrasOf(type: JobType, result: unknown, store: ArtifactStore): Promise<JobOutcomeExtras> {
  try {
    if (type === 'merge') {
      const id = (result as MergeJobResult | null)?.artifact?.id;
      const record = id ? await store.get(id) : null;
      return record ? { mergedBytes: record.files.reduce((sum, file) => sum + file.size, 0) } : {};
    }
    if (type === 'finetune') {
      const outcome = result as FinetuneJobResult | null;
      if (outcome && typeof outcome.samplesPerSecond === 'number') {
        return { training: { mode: outcome.mode, samplesPerSecond: outcome.samplesPerSecond } };
      }
    }
  } catch {
    // A metric is not worth failing over: the job itself completed.
  }
  return {};
}
