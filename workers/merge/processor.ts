// The merge queue's sandboxed processor: BullMQ forks a child process that imports this file, so
// the CPU-heavy tensor loop never starves the parent's lock renewal. Its settings come from the
// environment the worker host passes down (REDIS_URL, LORAFUSE_DATA_DIR, LORAFUSE_QUEUE_PREFIX).
import { rmSync } from 'node:fs';
import type { SandboxedJob } from 'bullmq';
import type { Redis } from 'ioredis';
import { loadConfig } from '../../src/config.ts';
import { createWorkerRedis, type MergeJobPayload, type MergeJobResult } from '../../src/queue/index.ts';
import { ArtifactStore } from '../../src/store/index.ts';
import { jobWorkDir, runMergeJob } from './run-merge-job.ts';

interface ProcessorDependencies {
  redis: Redis;
  store: ArtifactStore;
  prefix: string;
  dataDir: string;
}

let dependencies: Promise<ProcessorDependencies> | undefined;
const activeWorkDirs = new Set<string>();

function connect(): Promise<ProcessorDependencies> {
  dependencies ??= (async () => {
    const config = loadConfig(process.env);
    if (!config.redisUrl) throw new Error('the merge processor needs REDIS_URL');
    const redis = createWorkerRedis(config.redisUrl);
    const store = new ArtifactStore({ redis, dataDir: config.dataDir, prefix: config.queuePrefix });
    await store.init();
    return { redis, store, prefix: config.queuePrefix, dataDir: config.dataDir };
  })();
  return dependencies;
}

// When the worker host dies (SIGKILL, crash) the IPC channel closes: stop at once rather than
// finish a job whose lock is gone, and leave no work folder behind. The job is recovered as stalled.
process.once('disconnect', () => {
  for (const dir of activeWorkDirs) rmSync(dir, { recursive: true, force: true });
  process.exit(1);
});

export default async function processMergeJob(
  job: SandboxedJob<MergeJobPayload, MergeJobResult>,
  _token?: string,
  signal?: AbortSignal,
): Promise<MergeJobResult> {
  const deps = await connect();
  const id = job.id as string;
  const workDir = jobWorkDir(deps.dataDir, id);
  activeWorkDirs.add(workDir);
  try {
    return await runMergeJob(
      {
        id,
        data: job.data,
        attemptsMade: job.attemptsMade ?? 0,
        maxAttempts: job.opts?.attempts ?? 1,
        updateProgress: (progress) => job.updateProgress(progress),
      },
      { ...deps, signal },
    );
  } finally {
    activeWorkDirs.delete(workDir);
  }
}
