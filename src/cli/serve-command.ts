// `lorafuse serve`: the HTTP API alone, against the Redis named by REDIS_URL (scale-out: run as
// many as needed behind a load balancer; workers run elsewhere with `lorafuse worker`).
import { loadWorkerSettings } from '../../workers/worker-settings.ts';
import { SERVE_USAGE } from './usage.ts';
import { loadConfig } from '../config.ts';
import { startApi } from './services.ts';
import { onShutdown } from './shutdown.ts';

export async function runServe(argv: string[]): Promise<number> {
  if (argv.includes('--help') || argv.includes('-h')) {
    process.stdout.write(SERVE_USAGE);
    return 0;
  }
  const config = loadConfig();
  if (!config.redisUrl) {
    process.stderr.write('lorafuse serve needs REDIS_URL (or run `lorafuse dev` for an embedded Redis)\n');
    return 2;
  }
  // LORAFUSE_SHUTDOWN_GRACE_MS: how long in-flight requests (uploads) may finish after SIGTERM.
  const { shutdownGraceMs } = loadWorkerSettings();
  const api = await startApi(config, config.redisUrl);
  onShutdown(async () => {
    await api.close(shutdownGraceMs);
    return 0;
  });
  return new Promise<number>(() => undefined);
}
