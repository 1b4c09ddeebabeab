// What a sandboxed processor connects to, once per child process: Redis (waiting forever, as
// workers do) and the artifact store, from the environment the worker host passes down.
import type { Redis } from 'ioredis';
import { loadConfig, type RuntimeSettings } from '../src/config.ts';
import { createWorkerRedis, jobProject } from '../src/queue/index.ts';
import { ArtifactStore, createBlobStore } from '../src/store/index.ts';
import type { JobPublications } from './job-publication.ts';

export interface ProcessorDependencies {
  redis: Redis;
  store: ArtifactStore;
  prefix: string;
  dataDir: string;
  /** LORAFUSE_MERGE_WORKERS, parsed by src/config.ts. */
  mergeWorkers: number | undefined;
  /** LORAFUSE_MERGE_SHARD_BYTES: the output shard size of merges whose recipe sets none. */
  mergeShardBytes?: number;
  /** LORAFUSE_BACKEND and LORAFUSE_SIMD_KERNELS, parsed by src/config.ts. */
  runtime: RuntimeSettings;
}

/** What every job runner gets: the processor's connections, its cancel signal and its pacing. */
export interface JobRunDependencies extends ProcessorDependencies {
  /** Aborted by BullMQ (worker.cancelJob) or by our own shutdown. */
  signal?: AbortSignal;
  /** How often the cancel flag is polled. */
  cancelPollMs?: number;
  /** Least time between two progress reports. */
  progressIntervalMs?: number;
  /** How the job publishes its artifacts (with the attempt's lock token); absent: once per job, unguarded. */
  publications?: JobPublications;
}

let dependencies: Promise<ProcessorDependencies> | undefined;

/** The processor's connections; given the job's data, with the store seen as the job's project. */
export async function processorDependencies(
  queue: string,
  jobData?: unknown,
): Promise<ProcessorDependencies> {
  const shared = await sharedDependencies(queue);
  return jobData === undefined ? shared : { ...shared, store: shared.store.forProject(jobProject(jobData)) };
}

function sharedDependencies(queue: string): Promise<ProcessorDependencies> {
  dependencies ??= (async () => {
    const config = loadConfig(process.env);
    if (!config.redisUrl) throw new Error(`the ${queue} processor needs REDIS_URL`);
    const redis = createWorkerRedis(config.redisUrl, undefined, config.redis);
    const store = new ArtifactStore({
      redis,
      dataDir: config.dataDir,
      prefix: config.queuePrefix,
      blobs: createBlobStore(config),
    });
    await store.init();
    return {
      redis,
      store,
      prefix: config.queuePrefix,
      dataDir: config.dataDir,
      mergeWorkers: config.mergeWorkers,
      mergeShardBytes: config.mergeShardBytes,
      runtime: config.runtime,
    };
  })();
  return dependencies;
}
