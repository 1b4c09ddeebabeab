// One merge job from start to finish: plan against the stored inputs, execute into a private
// folder, ingest that folder as the result artifact. Only the final ingest makes an artifact, so a
// failed, cancelled or killed attempt never leaves a half-written one; its folder is removed.
import { rm } from 'node:fs/promises';
import path from 'node:path';
import { UnrecoverableError } from 'bullmq';
import { closePlan, executeMerge, type MergePlan, parseRecipe, planMerge } from '../../src/merge/index.ts';
import {
  CANCELLED_REASON,
  JOB_ERROR_TYPES,
  jobKeys,
  type MergeJobPayload,
  type MergeJobResult,
  type MergeProgress,
} from '../../src/queue/index.ts';
import { ArtifactInputs, kindOfId, LORAFUSE_VERSION, MissingArtifactError } from '../../src/store/index.ts';
import type { JobRunDependencies } from '../processor-dependencies.ts';

export interface MergeJobContext {
  id: string;
  data: MergeJobPayload;
  updateProgress(progress: MergeProgress): Promise<void>;
}

export type MergeJobDependencies = JobRunDependencies;

/** Errors that retrying cannot fix: the job fails at once with their message. */
const INVALID_INPUT_ERRORS = new Set([
  'RecipeError',
  'MergePlanError',
  'AdapterError',
  'SafetensorsError',
  'ArtifactValidationError',
]);

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
    if (cancelled.signal.reason === CANCELLED_REASON || (await userCancelled().catch(() => false))) {
      throw new UnrecoverableError(CANCELLED_REASON);
    }
    const name = (error as Error)?.name;
    const missing = error instanceof MissingArtifactError || inputs.missing !== undefined;
    if (INVALID_INPUT_ERRORS.has(name) || missing) {
      const type = missing ? JOB_ERROR_TYPES.artifactNotFound : JOB_ERROR_TYPES.invalidInput;
      const message = (error as Error).message;
      await deps.redis.set(keys.error(job.id), JSON.stringify({ type, message })).catch(() => undefined);
      throw new UnrecoverableError(message);
    }
    throw error;
  } finally {
    clearInterval(poll);
    deps.signal?.removeEventListener('abort', forwardAbort);
    if (plan) await closePlan(plan).catch(() => undefined);
    await inputs.closeAll();
    await rm(workDir, { recursive: true, force: true });
  }
}
