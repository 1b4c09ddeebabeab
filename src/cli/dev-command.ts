// `lorafuse dev`: everything on one machine in one command. Without REDIS_URL it starts a private
// redis-server (AOF on, noeviction) under the data directory, then the API and one worker per queue;
// Ctrl-C or SIGTERM stops the workers (letting their jobs finish), the API, and Redis last.
import { DEV_USAGE } from './usage.ts';
import path from 'node:path';
import type { Config } from '../config.ts';
import { loadConfig } from '../config.ts';
import { createApiRedis } from '../queue/index.ts';
import { AccessStore, DEFAULT_PROJECT } from '../store/index.ts';
import { type EmbeddedRedis, RedisServerMissingError, startEmbeddedRedis } from './embedded-redis.ts';
import { createLogger, type RunningApi, startApi, startWorker } from './services.ts';
import { onShutdown } from './shutdown.ts';

export interface DevStack {
  config: Config;
  api: RunningApi;
  redisUrl: string;
  /** A local admin key of the default project, made at start (auth on) or undefined (LORAFUSE_AUTH=false). */
  apiKey: string | undefined;
  /** Stops the worker (finishing its job), the API, then the embedded Redis. */
  stop(): Promise<void>;
}

/** Starts Redis (when REDIS_URL is unset), the API and one worker per queue. */
export async function startDevStack(
  config: Config,
  options: { quiet?: boolean; onRedis?: (url: string, embedded: boolean) => void } = {},
): Promise<DevStack> {
  let redis: EmbeddedRedis | undefined;
  if (!config.redisUrl) {
    redis = await startEmbeddedRedis({
      dir: path.join(config.dataDir, 'redis'),
      appendOnly: true,
      detached: true,
    });
  }
  const redisUrl = config.redisUrl ?? (redis as EmbeddedRedis).url;
  options.onRedis?.(redisUrl, redis !== undefined);
  const logger = options.quiet ? undefined : createLogger(config);
  let api: RunningApi | undefined;
  try {
    api = await startApi(config, redisUrl, options.quiet ? false : undefined);
    const worker = startWorker(config, redisUrl, logger);
    await worker.waitUntilReady();
    const running = api;
    const apiKey = config.access.authEnabled ? await localKey(config, redisUrl) : undefined;
    return {
      config,
      api: running,
      redisUrl,
      apiKey,
      async stop() {
        await worker.close();
        await running.close();
        await redis?.stop();
      },
    };
  } catch (error) {
    await api?.close().catch(() => undefined);
    await redis?.stop();
    throw error;
  }
}

/** The name of the key dev and demo make; each start revokes the previous one's. */
const LOCAL_KEY_NAME = 'lorafuse dev (local)';

/** A fresh local admin key of the default project; the one an earlier start made is revoked. */
async function localKey(config: Config, redisUrl: string): Promise<string> {
  const redis = createApiRedis(redisUrl, undefined, config.redis);
  try {
    const access = new AccessStore(redis, config.queuePrefix);
    for (const key of await access.listKeys(DEFAULT_PROJECT)) {
      if (key.name === LOCAL_KEY_NAME) await access.revokeKey(key.id);
    }
    const { token } = await access.createKey({
      project: DEFAULT_PROJECT,
      scopes: ['read', 'write', 'admin'],
      name: LOCAL_KEY_NAME,
    });
    return token;
  } finally {
    redis.disconnect();
  }
}

export async function runDev(argv: string[]): Promise<number> {
  if (argv.includes('--help') || argv.includes('-h')) {
    process.stdout.write(DEV_USAGE);
    return 0;
  }
  const config = loadConfig();
  let stack: DevStack;
  try {
    stack = await startDevStack(config, {
      onRedis: (url, embedded) =>
        process.stdout.write(
          embedded
            ? `lorafuse dev: embedded redis-server at ${url} (data in ${path.join(config.dataDir, 'redis')})\n`
            : 'lorafuse dev: using REDIS_URL\n',
        ),
    });
  } catch (error) {
    if (error instanceof RedisServerMissingError) {
      process.stderr.write(`${error.message}\n`);
      return 1;
    }
    throw error;
  }
  process.stdout.write(
    `lorafuse dev: API on ${stack.api.url} (docs at ${stack.api.url}/docs), merge, finetune, evaluate and analyze workers, data in ${config.dataDir}\n`,
  );
  process.stdout.write(
    stack.apiKey
      ? `lorafuse dev: local API key (admin of project ${DEFAULT_PROJECT}; a new one each start):\n  export LORAFUSE_URL=${stack.api.url} LORAFUSE_API_KEY=${stack.apiKey}\n`
      : 'lorafuse dev: LORAFUSE_AUTH=false: the API answers anyone who can reach it\n',
  );
  onShutdown(async () => {
    process.stdout.write('lorafuse dev: stopping (worker, API, Redis)\n');
    await stack.stop();
    return 0;
  });
  return new Promise<number>(() => undefined);
}
