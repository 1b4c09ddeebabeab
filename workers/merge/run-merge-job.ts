// One merge job from start to finish: plan against the stored inputs, execute into a private
// folder, ingest that folder as the result artifact. Only the final ingest makes an artifact, so a
// failed, cancelled or killed attempt never leaves a half-written one; its folder is removed. The
// ingest publishes once per job and only under the attempt's lock (job-publication.ts): an attempt
// that lost its lock (a Redis outage longer than the lock) stores nothing, so one job, one artifact. An attempt
// killed after publishing and before completing (say, while evaluating) leaves an artifact no result names: the
// next attempt deletes it before anything else, even one that only finds the job cancelled (discardPublications).
import { rm } from 'node:fs/promises';
import path from 'node:path';
import { UnrecoverableError } from 'bullmq';
import {
  closePlan,
  executeMerge,
  getMethod,
  type MergePlan,
  parseRecipe,
  planMerge,
} from '../../src/merge/index.ts';
import {
  CANCELLED_REASON,
  discardPublications,
  jobKeys,
  type MergeJobPayload,
  type MergeJobResult,
  type MergeProgress,
  searchParentOf,
} from '../../src/queue/index.ts';
import type { Report } from '../../src/eval/report/report-types.ts';
import {
  ArtifactInputs,
  type ArtifactRecord,
  kindOfId,
  LORAFUSE_VERSION,
  MissingArtifactError,
} from '../../src/store/index.ts';
import { DEFAULT_MAX_SHARD_BYTES } from '../../src/tensors/index.ts';
import { failJob } from '../job-failure.ts';
import { isStalePublication, jobPublications } from '../job-publication.ts';
import type { JobRunDependencies } from '../processor-dependencies.ts';
import { runDataDrivenStep } from './run-data-driven-step.ts';
import { endsShardedMerge, mergeInShards, type ShardFlowControls, type ShardedOutput } from './shard-flow.ts';
import { finishSearchPoint, startSearchPoint } from './search-point.ts';

export interface MergeJobContext {
  id: string;
  data: MergeJobPayload;
  /** Failed attempts before this one, and how many the job has in all (absent: this is the last). */
  attemptsMade?: number;
  maxAttempts?: number;
  updateProgress(progress: MergeProgress): Promise<void>;
  /** A flow parent's children results, keyed by BullMQ job key (a search reads its points from them). */
  childrenValues?: () => Promise<Record<string, unknown>>;
  /** Lets a large merge become the parent of its shard jobs (shard-flow.ts); absent: it always runs whole. */
  flow?: ShardFlowControls;
}

export type MergeJobDependencies = JobRunDependencies;

/** The private folder of one job's attempts (removed before and after each attempt). */
export function jobWorkDir(dataDir: string, jobId: string): string {
  return path.join(dataDir, 'tmp', `job-${jobId}`);
}

export async function runMergeJob(job: MergeJobContext, deps: MergeJobDependencies): Promise<MergeJobResult> {
  const keys = jobKeys(deps.prefix);
  const workDir = jobWorkDir(deps.dataDir, job.id);
  const scratchDir = `${workDir}-scratch`;
  const started = Date.now();
  const cancelled = new AbortController();
  // A search's point also stops when its search is cancelled.
  const cancelKeys = [keys.cancel(job.id)];
  if (job.data.point) cancelKeys.push(keys.cancel(searchParentOf(job.id, job.data.point)));
  const userCancelled = async () => (await deps.redis.exists(...cancelKeys)) > 0;
  const poll = setInterval(() => {
    userCancelled()
      .then((yes) => yes && cancelled.abort(CANCELLED_REASON))
      .catch(() => undefined);
  }, deps.cancelPollMs ?? 250);
  const forwardAbort = () => cancelled.abort(deps.signal?.reason ?? 'aborted');
  deps.signal?.addEventListener('abort', forwardAbort, { once: true });
  const inputs = new ArtifactInputs(deps.store);
  const publications = deps.publications ?? jobPublications(deps.prefix, 'merge', job.id);
  let stale = false;
  let plan: MergePlan | undefined;
  let stored: string | undefined;
  let sharded: ShardedOutput | null = null;
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
    await rm(scratchDir, { recursive: true, force: true });
    await discardPublications(deps.redis, deps.prefix, job.id, deps.store);
    if (await userCancelled()) throw new UnrecoverableError(CANCELLED_REASON);
    if (job.data.point) await startSearchPoint(job, deps);
    report({ phase: 'planning', tensorsDone: 0, tensorsTotal: 0 }, true);
    // The API applied its configured caps before queueing; a worker never second-guesses them.
    const recipe = parseRecipe(job.data.recipe, { maxModels: Number.POSITIVE_INFINITY });
    let result: { kind: 'model' | 'adapter'; diagnostics?: Record<string, unknown> };
    let dataDriven: MergeJobResult['dataDriven'];
    if (getMethod(recipe.merge_method)?.kind === 'data-driven') {
      // Data-driven methods run the model on the tasks' validation data (progress counts their own steps).
      const step = await runDataDrivenStep({
        recipe,
        evaluation: job.data.evaluation,
        seed: job.data.seed,
        store: deps.store,
        runtime: deps.runtime,
        outDir: workDir,
        scratchDir: `${workDir}-inputs`,
        signal: cancelled.signal,
        onProgress: (done, total) => {
          tensorsTotal = total;
          report({ phase: 'merging', tensorsDone: done, tensorsTotal: total }, done === 0);
        },
      });
      result = { kind: step.kind };
      dataDriven = step.report;
    } else {
      plan = await planMerge(recipe, inputs);
      const maxShardBytes = recipe.max_shard_size ?? deps.mergeShardBytes ?? DEFAULT_MAX_SHARD_BYTES;
      // More than one shard: one job per shard on any worker (this job resumes when they are done).
      sharded = await mergeInShards(job, deps, plan, {
        outDir: workDir,
        maxShardBytes,
        report: (progress) => report(progress, true),
      });
      if (sharded) tensorsTotal = plan.tensors.length;
      result =
        sharded ??
        (await executeMerge(plan, {
          outDir: workDir,
          signal: cancelled.signal,
          workers: deps.mergeWorkers,
          maxShardBytes,
          onProgress: (p) => {
            tensorsTotal = p.tensorsTotal;
            report({ phase: 'merging', tensorsDone: p.tensorsDone, tensorsTotal }, p.tensorsDone === 0);
          },
        }));
      await closePlan(plan);
      plan = undefined;
    }
    const timings: Record<string, number> = { mergeMs: Date.now() - started };
    // Heads are never averaged: each task's head is kept under its name beside the merged weights.
    if (job.data.evaluation) {
      const { keepTaskHeads } = await import('./merge-report.ts');
      await keepTaskHeads(deps.store, workDir, job.data.evaluation.tasks, scratchDir);
    }
    // The last point where a cancel still wins: after this the artifact exists.
    if (cancelled.signal.aborted || (await userCancelled())) throw new UnrecoverableError(CANCELLED_REASON);
    report({ phase: 'storing', tensorsDone: tensorsTotal, tensorsTotal }, true);
    const record = await deps.store.ingestDirectory(
      result.kind,
      workDir,
      {
        parents: job.data.inputs.map((id) => ({ kind: kindOfId(id) ?? 'unknown', id })),
        recipe: job.data.recipe,
        jobId: job.id,
        lorafuseVersion: LORAFUSE_VERSION,
      },
      { publication: publications('result'), stored: sharded?.stored },
    );
    stored = record.id;
    const output: MergeJobResult = { artifact: { kind: record.kind, id: record.id } };
    if (sharded) output.sharding = sharded.sharding;
    if (result.diagnostics) output.diagnostics = result.diagnostics;
    if (dataDriven) output.dataDriven = dataDriven;
    if (job.data.evaluation) {
      Object.assign(
        output,
        await evaluateMergedArtifact(job, deps, record, {
          scratchDir,
          timings,
          learned: dataDriven as Record<string, unknown> | undefined,
          signal: cancelled.signal,
          progress: (done, total) =>
            report({
              phase: 'evaluating',
              tensorsDone: tensorsTotal,
              tensorsTotal,
              evaluationsDone: done,
              evaluationsTotal: total,
            }),
        }),
      );
    }
    // The record references the shard blobs now; the job's holds go last, so a retry (after a failed
    // evaluation, say) still finds its shards.
    if (job.data.sharding || sharded) await deps.store.releaseHolds(job.id);
    await job.updateProgress({ phase: 'done', tensorsDone: tensorsTotal, tensorsTotal });
    return output;
  } catch (error) {
    if ((error as Error)?.name === 'WaitingChildrenError') throw error;
    // The attempt that owns the job now (it may have this attempt's artifact back) keeps everything.
    stale = isStalePublication(error);
    // An evaluation that fails after the merge was stored takes the merged artifact with it: a retry makes it anew.
    if (stored && !stale) await deps.store.delete(stored).catch(() => undefined);
    const finalAttempt = (job.attemptsMade ?? 0) + 1 >= (job.maxAttempts ?? 1);
    const failing = failJob(error, {
      redis: deps.redis,
      prefix: deps.prefix,
      jobId: job.id,
      cancelledByUser:
        cancelled.signal.reason === CANCELLED_REASON || (await userCancelled().catch(() => false)),
      aborted: deps.signal?.aborted === true,
      finalAttempt,
      missingArtifact: error instanceof MissingArtifactError || inputs.missing !== undefined,
    });
    // A sharded merge that ends here (failed, cancelled) releases the shard blobs nothing will publish.
    if (job.data.sharding || sharded) {
      await failing.catch(async (thrown) => {
        if (endsShardedMerge(thrown, finalAttempt))
          await deps.store.releaseHolds(job.id).catch(() => undefined);
      });
    }
    return await failing;
  } finally {
    clearInterval(poll);
    deps.signal?.removeEventListener('abort', forwardAbort);
    if (plan) await closePlan(plan).catch(() => undefined);
    await inputs.closeAll();
    // The folders are the job's, not the attempt's: a stale attempt leaves them to the owning one.
    if (!stale) {
      await rm(workDir, { recursive: true, force: true });
      await rm(scratchDir, { recursive: true, force: true });
    }
  }
}

/**
 * After the merged artifact is stored: its evaluations per task (a search child: validation only, no references),
 * then, unless a search parent will, the report artifact. Returns what the job result adds.
 */
async function evaluateMergedArtifact(
  job: MergeJobContext,
  deps: MergeJobDependencies,
  merged: ArtifactRecord,
  context: {
    scratchDir: string;
    timings: Record<string, number>;
    learned?: Record<string, unknown>;
    signal: AbortSignal;
    progress: (done: number, total: number) => void;
  },
): Promise<Partial<MergeJobResult>> {
  // The model runtime (tfjs) loads only for merges that evaluate: plain merges start as fast as before.
  const [{ evaluateMerge }, { writeReport }] = await Promise.all([
    import('./evaluate-merge.ts'),
    import('./merge-report.ts'),
  ]);
  const evaluation = job.data.evaluation!;
  const child = job.data.point !== undefined;
  const evaluatingFrom = Date.now();
  const { evaluations, cacheHits } = await evaluateMerge({
    store: deps.store,
    redis: deps.redis,
    prefix: deps.prefix,
    runtime: deps.runtime,
    workDir: path.join(context.scratchDir, 'evaluate'),
    merged,
    tasks: evaluation.tasks,
    baseModel: evaluation.baseModel,
    splits: child ? ['validation'] : ['validation', 'test'],
    references: !child,
    signal: context.signal,
    onProgress: context.progress,
  });
  context.timings.evaluationMs = Date.now() - evaluatingFrom;
  if (child) {
    const accuracies = evaluations.filter((e) => e.artifact === merged.id).map((e) => e.accuracy);
    await finishSearchPoint(job, deps, {
      validationAverageAccuracy:
        accuracies.length === 0 ? null : accuracies.reduce((a, b) => a + b, 0) / accuracies.length,
    });
    return { evaluations, cacheHits, point: job.data.point };
  }
  const reportingFrom = Date.now();
  const { report, record } = await writeReport({
    store: deps.store,
    dir: path.join(context.scratchDir, 'report'),
    jobId: job.id,
    data: job.data,
    merged: { kind: merged.kind, id: merged.id },
    evaluations,
    publication: (deps.publications ?? jobPublications(deps.prefix, 'merge', job.id))('report'),
    params: null,
    learned: context.learned,
    timings: { ...context.timings, reportMs: Date.now() - reportingFrom },
    signal: context.signal,
    runtime: deps.runtime,
  });
  return { report: { kind: 'report', id: record.id }, evaluation: headline(report), cacheHits };
}

/** The report's averages as the job result carries them. */
export function headline(report: Report): NonNullable<MergeJobResult['evaluation']> {
  return {
    averageAccuracy: report.averages.accuracy,
    averageNormalizedAccuracy: report.averages.normalizedAccuracy,
    validationAverageAccuracy: report.averages.validationAccuracy,
    validationAverageNormalizedAccuracy: report.averages.validationNormalizedAccuracy,
  };
}
