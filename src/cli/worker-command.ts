// `lorafuse worker`: the queue workers alone, against the Redis named by REDIS_URL. On SIGTERM it
// stops taking jobs and lets active ones finish within LORAFUSE_SHUTDOWN_GRACE_MS; past that it
// exits and the unfinished job is recovered as stalled by another worker.
import { WORKER_USAGE } from './usage.ts';
import { loadConfig } from '../config.ts';
import { createLogger, startWorker } from './services.ts';
import { onShutdown } from './shutdown.ts';

export async function runWorker(argv: string[]): Promise<number> {
  if (argv.includes('--help') || argv.includes('-h')) {
    process.stdout.write(WORKER_USAGE);
    return 0;
  }
  const config = loadConfig();
  if (!config.redisUrl) {
    process.stderr.write('lorafuse worker needs REDIS_URL (or run `lorafuse dev` for an embedded Redis)\n');
    return 2;
  }
  const logger = createLogger(config);
  const worker = startWorker(config, config.redisUrl, logger);
  // Listen before waiting for readiness: a worker takes jobs as soon as its first connection is up,
  // possibly before every queue reports ready, and a SIGTERM in that window must still finish the job.
  onShutdown(async (signal) => {
    logger.info({ signal }, 'worker stopping: finishing active jobs');
    const finished = await worker.close();
    if (!finished) logger.warn('grace period over: exiting with a job unfinished (it will be retried)');
    return 0;
  });
  await worker.waitUntilReady();
  logger.info({ queuePrefix: config.queuePrefix, concurrency: config.workerConcurrency }, 'worker ready');
  return new Promise<number>(() => undefined);
}
