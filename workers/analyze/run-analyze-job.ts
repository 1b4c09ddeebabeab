// One analysis job, top to bottom: open the inputs from the store, stream the task-vector statistics,
// optionally run the disentanglement grid (and the per-task evaluations at λ = 0 / alone / both) on the
// runtime, then write report.json + report.html as a `report` artifact. Its work folder goes however it ends.
import { mkdir, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { UnrecoverableError } from 'bullmq';
import { weightDisentanglement } from '../../src/eval/analysis/disentanglement.ts';
import { type AnalysisTaskEvaluations, buildAnalysisReport } from '../../src/eval/report/analysis-report.ts';
import { renderReportHtml } from '../../src/eval/report/render-html.ts';
import type { ReportEvaluation } from '../../src/eval/report/report-types.ts';
import { evaluateModel } from '../../src/model/evaluate-model.ts';
import {
  type AnalyzeJobPayload,
  type AnalyzeJobResult,
  type AnalyzeProgress,
  CANCELLED_REASON,
} from '../../src/queue/index.ts';
import {
  ArtifactInputs,
  kindOfId,
  LORAFUSE_VERSION,
  REPORT_HTML,
  REPORT_JSON,
} from '../../src/store/index.ts';
import { watchCancel } from '../cancel-watch.ts';
import { analyzeStoredInputs } from './analyze-stored.ts';
import { openStoredTaskPair, type StoredTask } from './stored-task-pair.ts';
import { failJob } from '../job-failure.ts';
import { jobPublications } from '../job-publication.ts';
import type { JobRunDependencies } from '../processor-dependencies.ts';

export interface AnalyzeJobContext {
  id: string;
  data: AnalyzeJobPayload;
  updateProgress(progress: AnalyzeProgress): Promise<void>;
}

export function analyzeWorkDir(dataDir: string, jobId: string): string {
  return path.join(dataDir, 'tmp', `job-${jobId}`);
}

export async function runAnalyzeJob(
  job: AnalyzeJobContext,
  deps: JobRunDependencies,
): Promise<AnalyzeJobResult> {
  const { data } = job;
  const workDir = analyzeWorkDir(deps.dataDir, job.id);
  const cancel = watchCancel(deps.redis, deps.prefix, job.id, deps.signal, deps.cancelPollMs);
  const inputs = new ArtifactInputs(deps.store);
  const disposers: Array<() => void> = [];
  const timings: Record<string, number> = {};
  const started = performance.now();
  const stopIfCancelled = () => {
    if (cancel.signal.aborted) throw new Error('analysis stopped');
  };
  try {
    await rm(workDir, { recursive: true, force: true });
    if (await cancel.userCancelled()) throw new UnrecoverableError(CANCELLED_REASON);
    await job.updateProgress({ phase: 'loading', done: 0, total: 0 });
    const onStep = async (done: number, total: number) => {
      stopIfCancelled();
      if (done === total || done % 16 === 0) await job.updateProgress({ phase: 'analyzing', done, total });
    };
    const analysis = await analyzeStoredInputs(inputs, {
      baseModel: data.baseModel,
      kind: data.kind,
      artifacts: data.artifacts,
      density: data.density,
      onStep,
    });
    await inputs.closeAll();
    timings.analysisSeconds = (performance.now() - started) / 1000;

    let disentanglement: { tasks: [string, string]; grid: number[]; error: number[][] } | null = null;
    const taskEvaluations: AnalysisTaskEvaluations[] = [];
    if (data.disentanglement) {
      const startedGrid = performance.now();
      const spec = data.disentanglement;
      const opened = await openStoredTaskPair(
        deps.store,
        {
          baseModel: data.baseModel,
          kind: data.kind,
          tasks: [0, 1].map((i) => ({
            artifact: data.artifacts[spec.tasks[i].input],
            head: spec.tasks[i].head,
            dataset: spec.tasks[i].dataset,
          })) as [StoredTask, StoredTask],
          maxExamples: spec.maxExamples,
        },
        { workDir, runtime: deps.runtime },
      );
      disposers.push(() => opened.dispose());
      const { model, pair, datasets } = opened;
      const result = await weightDisentanglement({
        model,
        pair,
        datasets: [datasets[0], datasets[1]],
        grid: spec.grid,
        onRow: async (done, total) => {
          stopIfCancelled();
          await job.updateProgress({ phase: 'disentangling', done, total });
        },
      });
      const taskNames: [string, string] = [spec.tasks[0].name, spec.tasks[1].name];
      disentanglement = { tasks: taskNames, grid: result.grid, error: result.error };
      for (const index of [0, 1] as const) {
        const task = spec.tasks[index];
        const evaluate = async (artifact: string, lambdas: [number, number]): Promise<ReportEvaluation> => {
          const ctx = pair.context(lambdas[0], lambdas[1], index);
          try {
            const measured = await evaluateModel(model, ctx, datasets[index], 256);
            const head = headName(data, index);
            return {
              key: `${artifact}|${head}|${task.dataset}`,
              artifact,
              head,
              dataset: task.dataset,
              task: task.name,
              split: datasets[index].split as ReportEvaluation['split'],
              examples: measured.examples,
              accuracy: measured.accuracy,
              loss: measured.loss,
              predictions: Array.from(measured.predictions),
            };
          } finally {
            pair.release();
          }
        };
        const alone: [number, number] = index === 0 ? [1, 0] : [0, 1];
        taskEvaluations.push({
          task: task.name,
          head: headName(data, index),
          reference: data.artifacts[task.input],
          split: datasets[index].split as ReportEvaluation['split'],
          merged: await evaluate(
            `task_arithmetic(${data.artifacts[spec.tasks[0].input]},${data.artifacts[spec.tasks[1].input]})`,
            [1, 1],
          ),
          referenceEvaluation: await evaluate(data.artifacts[task.input], alone),
          base: await evaluate(data.baseModel, [0, 0]),
        });
      }
      timings.disentanglementSeconds = (performance.now() - startedGrid) / 1000;
      timings.forwardPasses = result.forwardPasses;
    }

    if (await cancel.userCancelled()) throw new UnrecoverableError(CANCELLED_REASON);
    await job.updateProgress({ phase: 'storing', done: 0, total: 1 });
    timings.totalSeconds = (performance.now() - started) / 1000;
    const lineage = {
      parents: data.inputs.map((id) => ({ kind: kindOfId(id) ?? 'unknown', id })),
      recipe: data.recipe,
      jobId: job.id,
      lorafuseVersion: LORAFUSE_VERSION,
    };
    const report = buildAnalysisReport({
      job: job.id,
      kind: data.kind,
      baseModel: data.baseModel,
      names: data.names,
      analysis,
      disentanglement,
      tasks: taskEvaluations,
      recipe: data.recipe,
      lineage,
      timings,
      versions: { lorafuse: LORAFUSE_VERSION, node: process.versions.node },
    });
    const reportDir = path.join(workDir, 'report');
    await mkdir(reportDir, { recursive: true });
    await writeFile(path.join(reportDir, REPORT_JSON), `${JSON.stringify(report)}\n`);
    await writeFile(path.join(reportDir, REPORT_HTML), await renderReportHtml(report));
    if (cancel.signal.aborted || (await cancel.userCancelled()))
      throw new UnrecoverableError(CANCELLED_REASON);
    const record = await deps.store.ingestDirectory('report', reportDir, lineage, {
      publication: (deps.publications ?? jobPublications(deps.prefix, 'analyze', job.id))('report'),
    });
    await job.updateProgress({ phase: 'done', done: 1, total: 1 });
    return {
      artifact: { kind: 'report', id: record.id },
      summary: report.answer.summary,
      meanOffDiagonalCosine: analysis.parameters.meanOffDiagonalCosine,
      meanOffDiagonalDeltaCosine: analysis.delta?.meanOffDiagonalCosine ?? null,
      meanDisentanglementError: disentanglement
        ? disentanglement.error.flat().reduce((a, b) => a + b, 0) / disentanglement.error.flat().length
        : null,
    };
  } catch (error) {
    return await failJob(error, {
      redis: deps.redis,
      prefix: deps.prefix,
      jobId: job.id,
      cancelledByUser: await cancel.cancelledByUser(),
      aborted: cancel.signal.aborted,
    });
  } finally {
    cancel.stop();
    await inputs.closeAll();
    for (const dispose of disposers.reverse()) dispose();
    await rm(workDir, { recursive: true, force: true });
  }
}

function headName(data: AnalyzeJobPayload, taskIndex: 0 | 1): string {
  const task = data.disentanglement!.tasks[taskIndex];
  if (task.head) return task.head;
  const input = data.artifacts[task.input];
  return data.kind === 'adapter' ? `adapter:${input}` : `model:${input}`;
}
