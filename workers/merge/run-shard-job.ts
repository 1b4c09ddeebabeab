// One shard of a sharded merge, on whichever merge worker took it: plan the parent's recipe against the stored
// inputs, merge only this shard's tensors into the one file a single run would write for it, and publish that
// file as a blob the parent keeps (ArtifactStore.holdBlob) until it assembles the artifact. A retried shard
// writes the same bytes and counts once; the parent's or its own cancel stops it between tensors.
import { rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Job, Queue, UnrecoverableError } from 'bullmq';
import {
  closePlan,
  executeMerge,
  type MergePlan,
  parseRecipe,
  planMerge,
  subsetPlan,
} from '../../src/merge/index.ts';
import {
  CANCELLED_REASON,
  type MergeProgress,
  type MergeShardResult,
  type MergeShardTask,
  QUEUE_NAMES,
} from '../../src/queue/index.ts';
import { ArtifactInputs, MissingArtifactError } from '../../src/store/index.ts';
import { watchCancel } from '../cancel-watch.ts';
import { failJob } from '../job-failure.ts';
import type { MergeJobContext, MergeJobDependencies } from './run-merge-job.ts';
import { jobWorkDir } from './run-merge-job.ts';

/** Which worker ran a shard: the host and the worker process (the sandboxed child's parent). */
function workerName(): string {
  return `${os.hostname()}:${process.ppid}`;
}

export async function runShardJob(
  job: MergeJobContext,
  deps: MergeJobDependencies,
): Promise<MergeShardResult> {
  const shard = job.data.shard as MergeShardTask;
  const workDir = jobWorkDir(deps.dataDir, job.id);
  const started = Date.now();
  const cancel = watchCancel(deps.redis, deps.prefix, [job.id, shard.parent], deps.signal, deps.cancelPollMs);
  const inputs = new ArtifactInputs(deps.store);
  let plan: MergePlan | undefined;
  let lastReport = 0;
  try {
    await rm(workDir, { recursive: true, force: true });
    if (await cancel.userCancelled()) throw new UnrecoverableError(CANCELLED_REASON);
    const recipe = parseRecipe(job.data.recipe, { maxModels: Number.POSITIVE_INFINITY });
    plan = await planMerge(recipe, inputs);
    const own = subsetPlan(plan, shard.tensors);
    const result = await executeMerge(own, {
      outDir: workDir,
      signal: cancel.signal,
      workers: deps.mergeWorkers,
      // This shard's tensors are one file: the very file (header and data) the single run writes for them.
      maxShardBytes: Number.MAX_SAFE_INTEGER,
      onProgress: (p) => {
        const now = Date.now();
        if (p.tensorsDone !== p.tensorsTotal && now - lastReport < (deps.progressIntervalMs ?? 200)) return;
        lastReport = now;
        const progress: MergeProgress = {
          phase: 'merging',
          tensorsDone: p.tensorsDone,
          tensorsTotal: p.tensorsTotal,
        };
        job.updateProgress(progress).catch(() => undefined);
      },
    });
    await closePlan(plan);
    plan = undefined;
    const file = await deps.store.scratch.hashFile(path.join(workDir, `${own.output.stem}.safetensors`));
    // The last point where a cancel still wins: after this the parent holds the blob (and releases it when cancelled).
    if (cancel.signal.aborted || (await cancel.userCancelled()))
      throw new UnrecoverableError(CANCELLED_REASON);
    await deps.store.holdBlob(shard.parent, shard.file, file);
    await reportToParent(deps, shard).catch(() => undefined);
    const output: MergeShardResult = {
      shard: {
        index: shard.index,
        file: shard.file,
        sha256: file.sha256,
        size: file.size,
        tensors: shard.tensors.length,
        worker: workerName(),
        mergeMs: Date.now() - started,
      },
    };
    if (result.diagnostics) output.diagnostics = result.diagnostics;
    return output;
  } catch (error) {
    return await failJob(error, {
      redis: deps.redis,
      prefix: deps.prefix,
      jobId: job.id,
      cancelledByUser: await cancel.cancelledByUser(),
      aborted: deps.signal?.aborted === true,
      finalAttempt: (job.attemptsMade ?? 0) + 1 >= (job.maxAttempts ?? 1),
      missingArtifact: error instanceof MissingArtifactError || inputs.missing !== undefined,
    });
  } finally {
    cancel.stop();
    if (plan) await closePlan(plan).catch(() => undefined);
    await inputs.closeAll();
    await rm(workDir, { recursive: true, force: true });
  }
}

/** The parent waits without running: its progress (shards and tensors done) is told by the shards as they finish. */
async function reportToParent(deps: MergeJobDependencies, shard: MergeShardTask): Promise<void> {
  const held = new Set(Object.keys(await deps.store.holds(shard.parent)));
  const done = shard.outline.filter((s) => held.has(s.file));
  const progress: MergeProgress = {
    phase: 'merging',
    tensorsDone: done.reduce((sum, s) => sum + s.tensors, 0),
    tensorsTotal: shard.outline.reduce((sum, s) => sum + s.tensors, 0),
    shardsDone: done.length,
    shardsTotal: shard.count,
  };
  const queue = new Queue(QUEUE_NAMES.merge, { connection: deps.redis, prefix: deps.prefix });
  try {
    await (await Job.fromId(queue, shard.parent))?.updateProgress(progress);
  } finally {
    await queue.close();
  }
}
