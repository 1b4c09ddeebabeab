// Builds the real app against a real redis-server and a fresh data directory, with a unique key
// prefix per app so tests never see each other's artifacts or jobs.
import path from 'node:path';
import type { FastifyServerOptions } from 'fastify';
import { Redis } from 'ioredis';
import { type LorafuseApp, buildApp } from '../../src/api/app.ts';
import {
  type Config,
  loadConfig,
  loadRuntimeSettings,
  type RequestLimits,
  type UploadLimits,
} from '../../src/config.ts';
import { JobService } from '../../src/queue/index.ts';
import { ArtifactStore } from '../../src/store/index.ts';
import { tempDir, uniquePrefix } from '../helpers/redis.ts';
import type { ProcessorDependencies } from '../../workers/processor-dependencies.ts';
import { diskState } from '../store/fixtures.ts';

export interface TestApi {
  app: LorafuseApp;
  store: ArtifactStore;
  jobs: JobService;
  redis: Redis;
  config: Config;
  dataDir: string;
  workDir: string;
  /** Record counts and what is on disk: a rejected upload must leave all of it unchanged. */
  snapshot(): Promise<{ models: number; adapters: number; datasets: number; blobs: string[]; tmp: string[] }>;
  close(): Promise<void>;
}

export async function startApi(
  redisUrl: string,
  uploads: Partial<UploadLimits> = {},
  limits: Partial<RequestLimits> = {},
  options: {
    dataDir?: string;
    /**
     * More environment for loadConfig. Access control is off unless given (LORAFUSE_AUTH: 'true'): these
     * tests are about artifacts and jobs; test/api/auth.test.ts is about access, with auth on as `serve` has it.
     */
    env?: NodeJS.ProcessEnv;
    /** Fastify logger options (default: silent). */
    logger?: FastifyServerOptions['logger'];
  } = {},
): Promise<TestApi> {
  const work = tempDir('lorafuse-api');
  const dataDir = options.dataDir ?? path.join(work.dir, 'data');
  const prefix = uniquePrefix('api');
  const base = loadConfig({
    LORAFUSE_DATA_DIR: dataDir,
    LORAFUSE_QUEUE_PREFIX: prefix,
    REDIS_URL: redisUrl,
    LORAFUSE_AUTH: 'false',
    ...options.env,
  });
  const config: Config = {
    ...base,
    uploads: { ...base.uploads, ...uploads },
    limits: { ...base.limits, ...limits },
  };
  const redis = new Redis(redisUrl, { maxRetriesPerRequest: 1 });
  const store = new ArtifactStore({ redis, dataDir, prefix });
  const jobs = new JobService({ redis, prefix });
  const app = await buildApp({ config, redis, store, jobs, logger: options.logger ?? false });
  return {
    app,
    store,
    jobs,
    redis,
    config,
    dataDir,
    workDir: work.dir,
    async snapshot() {
      const disk = await diskState(dataDir);
      return {
        models: await store.count('model'),
        adapters: await store.count('adapter'),
        datasets: await store.count('dataset'),
        ...disk,
      };
    },
    async close() {
      await app.close();
      work.remove();
    },
  };
}

export interface Part {
  name: string;
  data: Buffer | string;
  /** File parts carry a filename; text fields do not. */
  filename?: string;
  contentType?: string;
}

/** A multipart/form-data body for app.inject. */
export function multipart(parts: Part[]): { payload: Buffer; headers: Record<string, string> } {
  const boundary = `----lorafuse${Math.random().toString(16).slice(2)}`;
  const chunks: Buffer[] = [];
  for (const part of parts) {
    const disposition =
      part.filename === undefined
        ? `form-data; name="${part.name}"`
        : `form-data; name="${part.name}"; filename="${part.filename}"`;
    const type =
      part.filename === undefined
        ? ''
        : `Content-Type: ${part.contentType ?? 'application/octet-stream'}\r\n`;
    chunks.push(Buffer.from(`--${boundary}\r\nContent-Disposition: ${disposition}\r\n${type}\r\n`));
    chunks.push(Buffer.isBuffer(part.data) ? part.data : Buffer.from(part.data));
    chunks.push(Buffer.from('\r\n'));
  }
  chunks.push(Buffer.from(`--${boundary}--\r\n`));
  return {
    payload: Buffer.concat(chunks),
    headers: { 'content-type': `multipart/form-data; boundary=${boundary}` },
  };
}

/** A file part named by its file name, as the upload routes expect. */
export function filePart(name: string, data: Buffer | string): Part {
  return { name, filename: name, data };
}

/** What a job runner called in-process gets from this API: its Redis, store, prefix and data directory. */
export function processorDependencies(api: TestApi): ProcessorDependencies {
  return {
    redis: api.redis,
    store: api.store,
    prefix: api.jobs.prefix,
    dataDir: api.dataDir,
    mergeWorkers: undefined,
    runtime: loadRuntimeSettings({}),
  };
}
