// One merge job from start to finish: plan against the stored inputs, execute into a private
// folder, ingest that folder as the result artifact. Only the final ingest makes an artifact, so a
// failed, cancelled or killed attempt never leaves a half-written one; its folder is removed.
import { rm } from 'node:fs/promises';
import path from 'node:path';
import { UnrecoverableError } from 'bullmq';
import { closePlan, executeMerge, type MergePlan, parseRecipe, planMerge } from '../../src/merge/index.ts';
import {
  CANCELLED_REASON,
  jobKeys,
  type MergeJobPayload,
  type MergeJobResult,
  type MergeProgress,
} from '../../src/queue/index.ts';
import { ArtifactInputs, kindOfId, LORAFUSE_VERSION } from '../../src/store/index.ts';
import { failJob } from '../job-failure.ts';
import type { JobRunDependencies } from '../processor-dependencies.ts';

export interface MergeJobContext {
  id: string;
  data: MergeJobPayload;
  /** Failed attempts before this one, and how many the job has in all (absent: this is the last). */
  attemptsMade?: number;
  maxAttempts?: number;
  updateProgress(progress: MergeProgress): Promise<void>;
}

export type MergeJobDependencies = JobRunDependencies;

/** The private folder of one job's attempts (removed before and after each attempt). */
export function jobWorkDir(dataDir: string, jobId: string): string {
  return path.join(dataDir, 'tmp', `job-${jobId}`);
}

export async function runMergeJob(job: MergeJobContext, deps: MergeJobDependencies): Promise<MergeJobResult> {
  const keys = jobKeys(deps.prefix);
  const workDir = jobWorkDir(deps.dataDir, job.id);
  const cancelled = new AbortController();
  const userCancelled = async () => (await deps.redis.exists(keys.cancel(job.id))) === 1;
  const poll = setInterval(() => {
    userCancelled()
      .then((yes) => yes && cancelled.abort(CANCELLED_REASON))
      .catch(() => undefined);
  }, deps.cancelPollMs ?? 250);
  const forwardAbort = () => cancelled.abort(deps.signal?.reason ?? 'aborted');
  deps.signal?.addEventListener('abort', forwardAbort, { once: true });
  const inputs = new ArtifactInputs(deps.store);
  let plan: MergePlan | undefined;
  let lastReport = 0;
  let tensorsTotal = 0;
  const report = (progress: MergeProgress, force = false) => {
    const now = Date.now();
    if (!force && now - lastReport < (deps.progressIntervalMs ?? 200)) return;
    lastReport = now;
    job.updateProgress(progress).catch(() => undefined);
  };
  try {
    // A killed earlier attempt may have left its folder behind.
    await rm(workDir, { recursive: true, force: true });
    if (await userCancelled()) throw new UnrecoverableError(CANCELLED_REASON);
    report({ phase: 'planning', tensorsDone: 0, tensorsTotal: 0 }, true);
    // The API applied its configured caps before queueing; a worker never second-guesses them.
    const recipe = parseRecipe(job.data.recipe, { maxModels: Number.POSITIVE_INFINITY });
    plan = await planMerge(recipe, inputs);
    const result = await executeMerge(plan, {
      outDir: workDir,
      signal: cancelled.signal,
      onProgress: (p) => {
        tensorsTotal = p.tensorsTotal;
        report({ phase: 'merging', tensorsDone: p.tensorsDone, tensorsTotal }, p.tensorsDone === 0);
      },
    });
    await closePlan(plan);
    plan = undefined;
    // The last point where a cancel still wins: after this the artifact exists.
    if (cancelled.signal.aborted || (await userCancelled())) throw new UnrecoverableError(CANCELLED_REASON);
    report({ phase: 'storing', tensorsDone: tensorsTotal, tensorsTotal }, true);
    const record = await deps.store.ingestDirectory(result.kind, workDir, {
      parents: job.data.inputs.map((id) => ({ kind: kindOfId(id) ?? 'unknown', id })),
      recipe: job.data.recipe,
      jobId: job.id,
      lorafuseVersion: LORAFUSE_VERSION,
    });
    await job.updateProgress({ phase: 'done', tensorsDone: tensorsTotal, tensorsTotal });
    const output: MergeJobResult = { artifact: { kind: record.kind, id: record.id } };
    if (result.diagnostics) output.diagnostics = result.diagnostics;
    return output;
  } catch (error) {
    return await failJob(error, {
      redis: deps.redis,
      prefix: deps.prefix,
      jobId: job.id,
      cancelledByUser:
        cancelled.signal.reason === CANCELLED_REASON || (await userCancelled().catch(() => false)),
      aborted: deps.signal?.aborted === true,
      finalAttempt: (job.attemptsMade ?? 0) + 1 >= (job.maxAttempts ?? 1),
      missingArtifact: inputs.missing !== undefined,
    });
  } finally {
    clearInterval(poll);
    deps.signal?.removeEventListener('abort', forwardAbort);
    if (plan) await closePlan(plan).catch(() => undefined);
    await inputs.closeAll();
    await rm(workDir, { recursive: true, force: true });
  }
}
