// Several `lorafuse worker` processes as on several machines, for the tests of many workers: each its own data
// directory (local scratch only), all sharing one redis-server and one S3-compatible bucket (s3rver on
// loopback), with the API side's store and job service beside them. Registers its own hooks in the describe.
import path from 'node:path';
import { after, afterEach, before, beforeEach } from 'node:test';
import { createApiRedis, JobService } from '../../src/queue/index.ts';
import { ArtifactStore } from '../../src/store/index.ts';
import { startTestRedis, type TestRedis, tempDir, uniquePrefix } from '../helpers/redis.ts';
import { startTestS3, type TestS3 } from '../helpers/s3.ts';
import { spawnWorkerProcess, type WorkerProcess } from '../helpers/worker-process.ts';
import { waitFor } from './fixtures.ts';

export interface FleetWorker extends WorkerProcess {
  dataDir: string;
  /** The environment it was started with (over the test's own), to run `lorafuse worker --health` as it. */
  env: Record<string, string>;
}

export interface WorkerFleet {
  /** This test's queue and bucket key prefix. */
  prefix: string;
  /** This test's scratch folder: the API's data directory and each worker's live under it. */
  dir: string;
  store: ArtifactStore;
  jobs: JobService;
  /** Starts a worker with its own data directory `dir/name`; `env` adds to or overrides the fleet's settings. */
  spawn(name: string, args: string[], env?: Record<string, string>): FleetWorker;
  /** Resolves once the worker logged that it is ready. */
  ready(worker: FleetWorker): Promise<unknown>;
}

/** Whether this worker's log shows it starting job `id` (pino JSON lines from queue-worker.ts). */
export function startedJob(worker: WorkerProcess, id: string): boolean {
  return worker
    .output()
    .split('\n')
    .some((line) => line.includes(`"jobId":"${id}"`) && line.includes('merge job started'));
}

/**
 * Call inside a describe: one redis-server and one bucket for the describe; per test a fresh prefix, scratch
 * folder, store and job service, and every worker spawned in the test SIGKILLed (process group) after it.
 */
export function useWorkerFleet(name: string): WorkerFleet {
  let server: TestRedis;
  let s3: TestS3;
  let redis: ReturnType<typeof createApiRedis>;
  let scratch: { dir: string; remove(): void };
  const children: FleetWorker[] = [];
  const fleet = {
    spawn(worker: string, args: string[], env: Record<string, string> = {}): FleetWorker {
      const dataDir = path.join(fleet.dir, worker);
      const settings = {
        ...s3.env(`${fleet.prefix}/`),
        REDIS_URL: server.url,
        LORAFUSE_QUEUE_PREFIX: fleet.prefix,
        LORAFUSE_DATA_DIR: dataDir,
        LOG_LEVEL: 'info',
        LORAFUSE_WORKER_LOCK_MS: '1000',
        LORAFUSE_WORKER_STALLED_MS: '500',
        ...env,
      };
      const spawned = { ...spawnWorkerProcess(settings, args), dataDir, env: settings };
      children.push(spawned);
      return spawned;
    },
    ready: (worker: FleetWorker) =>
      waitFor(`worker in ${worker.dataDir} to be ready`, async () =>
        worker.output().includes('worker ready'),
      ),
  } as WorkerFleet;

  before(async () => {
    server = await startTestRedis();
    s3 = await startTestS3();
  });
  after(async () => {
    await server.stop();
    await s3.stop();
  });
  beforeEach(async () => {
    fleet.prefix = uniquePrefix(name);
    scratch = tempDir(`lorafuse-${name}`);
    fleet.dir = scratch.dir;
    redis = createApiRedis(server.url);
    fleet.store = new ArtifactStore({
      redis,
      dataDir: path.join(scratch.dir, 'api'),
      prefix: fleet.prefix,
      blobs: s3.blobStore({ prefix: fleet.prefix }),
    });
    await fleet.store.init();
    fleet.jobs = new JobService({ redis, prefix: fleet.prefix });
    children.length = 0;
  });
  afterEach(async () => {
    for (const worker of children) await worker.kill();
    await fleet.jobs.close();
    await fleet.store.close();
    redis.disconnect();
    scratch.remove();
  });
  return fleet;
}
