// `lorafuse worker`: the queue workers alone, against the Redis named by REDIS_URL. `--queues`
// picks the queues this process serves (GPU machines: finetune,evaluate; CPU machines: merge) and
// `--concurrency` how many jobs of each run at once. On SIGTERM it stops taking jobs and lets active
// ones finish within LORAFUSE_SHUTDOWN_GRACE_MS; past that it exits and the unfinished job is
// recovered as stalled by another worker. `--health` is the container health check.
import { WORKER_USAGE } from './usage.ts';
import {
  ConfigError,
  loadConfig,
  parseWorkerConcurrency,
  parseWorkerQueues,
  type WorkerPlan,
} from '../config.ts';
import { createLogger, startWorker } from './services.ts';
import { onShutdown } from './shutdown.ts';
import { checkHeartbeat, heartbeatFile, startHeartbeat } from './worker-heartbeat.ts';

export interface WorkerArguments {
  plan: WorkerPlan;
  health: boolean;
}

/** `--queues a,b` / `--queues=a,b`, `--concurrency merge=2,...`, `--health`; they override the environment. */
export function parseWorkerArguments(argv: string[], defaults: WorkerPlan): WorkerArguments {
  const plan: WorkerPlan = { queues: [...defaults.queues], concurrency: { ...defaults.concurrency } };
  let health = false;
  for (let i = 0; i < argv.length; i++) {
    const [flag, inline] =
      argv[i].startsWith('--') && argv[i].includes('=') ? argv[i].split('=', 2) : [argv[i]];
    const value = () => {
      const next = inline ?? argv[++i];
      if (next === undefined || next === '') throw new ConfigError(flag, 'needs a value');
      return next;
    };
    if (flag === '--queues') plan.queues = parseWorkerQueues(value(), '--queues');
    else if (flag === '--concurrency')
      plan.concurrency = parseWorkerConcurrency(value(), '--concurrency', plan.concurrency);
    else if (flag === '--health') health = true;
    else throw new ConfigError(flag, 'unknown option (see lorafuse worker --help)');
  }
  return { plan, health };
}

export async function runWorker(argv: string[]): Promise<number> {
  if (argv.includes('--help') || argv.includes('-h')) {
    process.stdout.write(WORKER_USAGE);
    return 0;
  }
  const config = loadConfig();
  const { plan, health } = parseWorkerArguments(argv, config.worker);
  const beatFile = heartbeatFile(config.dataDir);
  if (health) {
    const result = await checkHeartbeat(beatFile);
    (result.ok ? process.stdout : process.stderr).write(`${result.message}\n`);
    return result.ok ? 0 : 1;
  }
  if (!config.redisUrl) {
    process.stderr.write('lorafuse worker needs REDIS_URL (or run `lorafuse dev` for an embedded Redis)\n');
    return 2;
  }
  const logger = createLogger(config);
  const worker = startWorker(config, config.redisUrl, logger, plan);
  let heartbeat: ReturnType<typeof startHeartbeat> | undefined;
  // Listen before waiting for readiness: a worker takes jobs as soon as its first connection is up,
  // possibly before every queue reports ready, and a SIGTERM in that window must still finish the job.
  onShutdown(async (signal) => {
    logger.info({ signal }, 'worker stopping: finishing active jobs');
    await heartbeat?.stop();
    const finished = await worker.close();
    if (!finished) logger.warn('grace period over: exiting with a job unfinished (it will be retried)');
    return 0;
  });
  await worker.waitUntilReady();
  heartbeat = startHeartbeat(
    beatFile,
    async () => {
      for (const handle of worker.workers) {
        if (!handle.worker.isRunning()) throw new Error('a queue worker stopped');
        // BullMQ's client type hides ioredis's PING; the connection is an ioredis client.
        await ((await handle.worker.client) as unknown as { ping(): Promise<string> }).ping();
      }
    },
    { queues: plan.queues },
  );
  logger.info(
    {
      queuePrefix: config.queuePrefix,
      queues: plan.queues,
      concurrency: plan.concurrency,
      heartbeat: beatFile,
    },
    'worker ready',
  );
  return new Promise<number>(() => undefined);
}
