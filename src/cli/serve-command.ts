// `lorafuse serve`: the HTTP API alone, against the Redis named by REDIS_URL (scale-out: run as
// many as needed behind a load balancer; workers run elsewhere with `lorafuse worker`).
import { loadWorkerSettings } from '../../workers/worker-settings.ts';
import { SERVE_USAGE } from './usage.ts';
import type { LorafuseApp } from '../api/index.ts';
import { type Config, loadConfig } from '../config.ts';
import { startApi } from './services.ts';
import { onShutdown } from './shutdown.ts';

/** Says, once at start, when nobody could call the API or when anybody can. */
async function warnAboutAccess(config: Config, app: LorafuseApp): Promise<void> {
  if (!config.access.authEnabled) {
    app.log.warn('LORAFUSE_AUTH=false: every request is served without a key, as the default project');
    return;
  }
  if (config.access.bootstrapKey) return;
  const keys = await app.access.listKeys().catch(() => null);
  if (keys?.length === 0) {
    app.log.warn(
      'no API key exists yet: make one with `lorafuse keys create --scopes read,write,admin`, or set LORAFUSE_BOOTSTRAP_KEY',
    );
  }
}

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
  await warnAboutAccess(config, api.app);
  onShutdown(async () => {
    await api.close(shutdownGraceMs);
    return 0;
  });
  return new Promise<number>(() => undefined);
}
