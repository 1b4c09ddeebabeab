// A search's parent job: BullMQ runs it once every grid point (a child merge job, evaluated on validation) has
// completed. It evaluates the references on validation, selects the point with the best average normalized
// validation accuracy (never test), evaluates that point on test, writes the report with the whole grid, and
// keeps only the chosen artifact unless `keep: all`. Everything it evaluates goes through the cache, so a parent
// that crashed and runs again repeats nothing; a report it stored before crashing is deleted first (as any merge
// job's publications are: discardPublications).
import { rm } from 'node:fs/promises';
import { UnrecoverableError } from 'bullmq';
import { jobPublications } from '../job-publication.ts';
import { buildReport } from '../../src/eval/report/build-report.ts';
import type { ReportEvaluation, ReportSearch } from '../../src/eval/report/report-types.ts';
import {
  CANCELLED_REASON,
  clearSearchProgress,
  discardPublications,
  JOB_ERROR_TYPES,
  JobService,
  jobKeys,
  type MergeJobResult,
  type MergeSearchPoint,
} from '../../src/queue/index.ts';
import { evaluateMerge } from './evaluate-merge.ts';
import { writeReport } from './merge-report.ts';
import { headline, jobWorkDir, type MergeJobContext, type MergeJobDependencies } from './run-merge-job.ts';

interface PointResult {
  point: MergeSearchPoint;
  artifact: string;
  evaluations: ReportEvaluation[];
}

async function pointResults(job: MergeJobContext, expected: number): Promise<PointResult[]> {
  if (!job.childrenValues) throw new Error('a search job needs its children results');
  const values = Object.values(await job.childrenValues()) as MergeJobResult[];
  const points = values
    .filter((v) => v?.point !== undefined)
    .map((v) => ({
      point: v.point!,
      artifact: v.artifact.id,
      evaluations: (v.evaluations ?? []) as ReportEvaluation[],
    }))
    .sort((a, b) => a.point.index - b.point.index);
  if (points.length !== expected)
    throw new Error(`the search has ${points.length} finished points of ${expected}`);
  return points;
}

export async function runSearchJob(
  job: MergeJobContext,
  deps: MergeJobDependencies,
): Promise<MergeJobResult> {
  const { search, evaluation } = job.data;
  if (!search || !evaluation) throw new UnrecoverableError('a search job needs search and evaluation');
  const scratch = `${jobWorkDir(deps.dataDir, job.id)}-scratch`;
  const keys = jobKeys(deps.prefix);
  const expected = Object.values(search.grid).reduce((n, values) => n * values.length, 1);
  const started = Date.now();
  try {
    await rm(scratch, { recursive: true, force: true });
    await discardPublications(deps.redis, deps.prefix, job.id, deps.store);
    if ((await deps.redis.exists(keys.cancel(job.id))) === 1) throw new UnrecoverableError(CANCELLED_REASON);
    await job.updateProgress({
      phase: 'searching',
      tensorsDone: 0,
      tensorsTotal: 0,
      pointsDone: expected,
      pointsTotal: expected,
    });
    const points = await pointResults(job, expected);
    const common = {
      store: deps.store,
      redis: deps.redis,
      prefix: deps.prefix,
      runtime: deps.runtime,
      tasks: evaluation.tasks,
      baseModel: evaluation.baseModel,
    };
    // References (and base rows) on validation: what every point's normalized accuracy divides by.
    const references = await evaluateMerge({
      ...common,
      workDir: `${scratch}/references`,
      merged: null,
      splits: ['validation'],
      references: true,
      signal: deps.signal,
    });
    const scored = points.map((p) => {
      const report = buildReport({
        kind: 'search',
        title: '',
        job: null,
        artifact: p.artifact,
        method: null,
        params: p.point.params,
        tasks: evaluation.tasks,
        baseModel: evaluation.baseModel,
        evaluations: [...p.evaluations, ...references.evaluations],
        recipe: null,
        lineage: {},
        timings: {},
        versions: {},
      });
      return {
        ...p,
        averageAccuracy: report.averages.validationAccuracy,
        normalized: report.averages.validationNormalizedAccuracy,
      };
    });
    // Selection on validation only: average normalized accuracy (average accuracy when no reference was measured).
    const score = (s: (typeof scored)[number]) =>
      s.normalized ?? s.averageAccuracy ?? Number.NEGATIVE_INFINITY;
    let chosen = 0;
    for (const [i, s] of scored.entries()) if (score(s) > score(scored[chosen])) chosen = i;
    const best = scored[chosen];
    const bestRecord = await deps.store.get(best.artifact);
    if (!bestRecord) throw new Error(`the chosen point's artifact ${best.artifact} is gone`);
    const evaluatingFrom = Date.now();
    const final = await evaluateMerge({
      ...common,
      workDir: `${scratch}/chosen`,
      merged: bestRecord,
      splits: ['validation', 'test'],
      references: true,
      signal: deps.signal,
    });
    const evaluationMs = Date.now() - evaluatingFrom;
    const kept = (i: number) => search.keep === 'all' || i === chosen;
    const searchSection: ReportSearch = {
      grid: search.grid,
      points: scored.map((s, i) => ({
        params: s.point.params,
        job: JobService.childId(job.id, s.point.index),
        artifact: kept(i) ? s.artifact : null,
        validation: { averageAccuracy: s.averageAccuracy ?? 0, averageNormalizedAccuracy: s.normalized },
      })),
      chosen,
      selectedOn: 'validation',
    };
    // The report records every point's validation predictions too, so the grid is reproducible from it alone.
    const byKey = new Map<string, ReportEvaluation>();
    for (const e of [...final.evaluations, ...scored.flatMap((s) => s.evaluations)])
      if (!byKey.has(e.key)) byKey.set(e.key, e);
    const { report, record } = await writeReport({
      store: deps.store,
      dir: `${scratch}/report`,
      jobId: job.id,
      data: {
        ...job.data,
        recipe: {
          ...job.data.recipe,
          parameters: { ...((job.data.recipe.parameters as object) ?? {}), ...best.point.params },
        },
      },
      merged: { kind: bestRecord.kind, id: bestRecord.id },
      evaluations: [...byKey.values()],
      params: best.point.params,
      search: searchSection,
      timings: { searchMs: Date.now() - started, chosenEvaluationMs: evaluationMs },
      extraParents: scored.filter((_, i) => kept(i)).map((s) => s.artifact),
      signal: deps.signal,
      runtime: deps.runtime,
      publication: (deps.publications ?? jobPublications(deps.prefix, 'merge', job.id))('report'),
    });
    if (search.keep !== 'all') {
      for (const [i, s] of scored.entries())
        if (i !== chosen) await deps.store.delete(s.artifact).catch(() => undefined);
    }
    await clearSearchProgress(deps.redis, deps.prefix, job.id);
    await job.updateProgress({
      phase: 'done',
      tensorsDone: 0,
      tensorsTotal: 0,
      pointsDone: expected,
      pointsTotal: expected,
    });
    return {
      artifact: { kind: bestRecord.kind, id: bestRecord.id },
      report: { kind: 'report', id: record.id },
      evaluation: headline(report),
      chosen: {
        index: best.point.index,
        params: best.point.params,
        job: JobService.childId(job.id, best.point.index),
      },
      cacheHits: references.cacheHits + final.cacheHits,
    };
  } catch (error) {
    if (error instanceof UnrecoverableError) throw error;
    if ((error as Error)?.name === 'InvalidJobInputError') {
      const message = (error as Error).message;
      await deps.redis
        .set(keys.error(job.id), JSON.stringify({ type: JOB_ERROR_TYPES.invalidInput, message }))
        .catch(() => undefined);
      throw new UnrecoverableError(message);
    }
    throw error;
  } finally {
    await rm(scratch, { recursive: true, force: true });
  }
}
