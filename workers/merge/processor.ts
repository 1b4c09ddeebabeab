// The merge queue's sandboxed processor: BullMQ forks a child process that imports this file, so
// the CPU-heavy tensor loop never starves the parent's lock renewal. Its settings come from the
// environment the worker host passes down (REDIS_URL, LORAFUSE_DATA_DIR, LORAFUSE_QUEUE_PREFIX).
import { rmSync } from 'node:fs';
import type { SandboxedJob } from 'bullmq';
import type {
  MergeJobPayload,
  MergeJobResult,
  MergeProgress,
  MergeShardResult,
} from '../../src/queue/index.ts';
import { jobPublications } from '../job-publication.ts';
import { processorDependencies } from '../processor-dependencies.ts';
import { jobWorkDir, runMergeJob } from './run-merge-job.ts';

const activeWorkDirs = new Set<string>();

// When the worker host dies (SIGKILL, crash) the IPC channel closes: stop at once rather than
// finish a job whose lock is gone, and leave no work folder behind. The job is recovered as stalled.
process.once('disconnect', () => {
  for (const dir of activeWorkDirs) rmSync(dir, { recursive: true, force: true });
  process.exit(1);
});

export default async function processMergeJob(
  job: SandboxedJob<MergeJobPayload, MergeJobResult>,
  token?: string,
  signal?: AbortSignal,
): Promise<MergeJobResult | MergeShardResult> {
  const deps = await processorDependencies('merge', job.data);
  const id = job.id as string;
  const workDir = jobWorkDir(deps.dataDir, id);
  activeWorkDirs.add(workDir);
  try {
    const context = {
      id,
      data: job.data,
      attemptsMade: job.attemptsMade ?? 0,
      maxAttempts: job.opts?.attempts ?? 1,
      updateProgress: (progress: MergeProgress) => job.updateProgress(progress),
      childrenValues: () => job.getChildrenValues(),
      // A large merge queues its shards as its own children and waits for them (shard-flow.ts).
      flow: {
        queueQualifiedName: job.queueQualifiedName,
        updateData: (data: MergeJobPayload) => job.updateData(data),
        moveToWaitingChildren: () => job.moveToWaitingChildren(token),
        ignoredChildrenFailures: () => job.getIgnoredChildrenFailures(),
      },
    };
    const publications = jobPublications(deps.prefix, 'merge', id, token);
    // One shard of a sharded merge (a child job the merge queued).
    if (job.data.shard) {
      const { runShardJob } = await import('./run-shard-job.ts');
      return await runShardJob(context, { ...deps, signal });
    }
    // A search's parent runs once all its grid points (child merge jobs) completed.
    if (!job.data.search) return await runMergeJob(context, { ...deps, signal, publications });
    const { runSearchJob } = await import('./run-search-job.ts');
    return await runSearchJob(context, { ...deps, signal, publications });
  } finally {
    activeWorkDirs.delete(workDir);
  }
}
