// Writes openapi.yaml from the route schemas: builds the real app (against a private, throwaway
// redis-server and data directory, since the app's services need a connection) and asks
// @fastify/swagger for the document. A test regenerates it and fails when the file drifts.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Redis } from 'ioredis';
import { buildApp } from '../src/api/app.ts';
import { openApiYaml } from '../src/api/openapi-document.ts';
import { startEmbeddedRedis } from '../src/cli/embedded-redis.ts';
import { loadConfig } from '../src/config.ts';
import { JobService } from '../src/queue/index.ts';
import { ArtifactStore } from '../src/store/index.ts';

const target = path.resolve(import.meta.dirname, '..', 'openapi.yaml');
const scratch = mkdtempSync(path.join(os.tmpdir(), 'lorafuse-openapi-'));
const server = await startEmbeddedRedis({ dir: path.join(scratch, 'redis'), appendOnly: false });
try {
  const config = loadConfig({
    LORAFUSE_DATA_DIR: path.join(scratch, 'data'),
    REDIS_URL: server.url,
    LOG_LEVEL: 'silent',
  });
  const redis = new Redis(server.url, { maxRetriesPerRequest: 1 });
  const store = new ArtifactStore({ redis, dataDir: config.dataDir, prefix: 'openapi' });
  const jobs = new JobService({ redis, prefix: 'openapi' });
  const app = await buildApp({ config, redis, store, jobs, logger: false });
  try {
    writeFileSync(target, openApiYaml(app));
  } finally {
    await app.close();
  }
  console.log(`wrote ${path.relative(process.cwd(), target)}`);
} finally {
  await server.stop();
  rmSync(scratch, { recursive: true, force: true });
}
