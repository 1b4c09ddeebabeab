// `lorafuse worker`: the queue workers alone, against the Redis named by REDIS_URL. On SIGTERM it
// stops taking jobs and lets active ones finish within LORAFUSE_SHUTDOWN_GRACE_MS; past that it
// exits and the unfinished job is recovered as stalled by another worker.
import { loadConfig } from '../config.ts';
import { createLogger, startWorker } from './services.ts';
import { onShutdown } from './shutdown.ts';

export const WORKER_USAGE = `usage: lorafuse worker

Runs the merge worker (LORAFUSE_WORKER_CONCURRENCY jobs at once, each in a child process).
Needs REDIS_URL. SIGTERM/Ctrl-C: finish active jobs within LORAFUSE_SHUTDOWN_GRACE_MS (60000),
then exit; a job still running then goes back to the queue once its lock expires.
`;

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
  await worker.worker.waitUntilReady();
  logger.info({ queuePrefix: config.queuePrefix, concurrency: config.workerConcurrency }, 'worker ready');
  onShutdown(async (signal) => {
    logger.info({ signal }, 'worker stopping: finishing active jobs');
    const finished = await worker.close();
    if (!finished) logger.warn('grace period over: exiting with a job unfinished (it will be retried)');
    return 0;
  });
  return new Promise<number>(() => undefined);
}
