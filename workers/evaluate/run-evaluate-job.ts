// One evaluation job: the stored model (alone, or with each adapter in turn) over each stored
// dataset, accuracy and mean cross-entropy per pair. Artifacts are linked into a private folder
// under tmp/ for the runtime to read by path; it is removed however the job ends.
import { rm } from 'node:fs/promises';
import path from 'node:path';
import { UnrecoverableError } from 'bullmq';
import { backendOptions, initBackend } from '../../src/model/backend.ts';
import { evaluateModel } from '../../src/model/evaluate-model.ts';
import { headOverrides } from '../../src/eval/heads.ts';
import { ForwardContext } from '../../src/model/forward-context.ts';
import { contextFor } from '../../src/model/inference.ts';
import { loadModel } from '../../src/model/load-model.ts';
import { type LoadedAdapter, loadAdapter } from '../../src/model/lora/peft-adapter.ts';
import { readDataset } from '../../src/model/train/dataset.ts';
import {
  CANCELLED_REASON,
  type EvaluateJobPayload,
  type EvaluateJobResult,
  type EvaluateProgress,
  type EvaluationEntry,
} from '../../src/queue/index.ts';
import { type ArtifactRecord, DATASET_FILE, MODEL_CONFIG, requireArtifact } from '../../src/store/index.ts';
import { watchCancel } from '../cancel-watch.ts';
import { resolveHead } from '../resolve-head.ts';
import { failJob, InvalidJobInputError } from '../job-failure.ts';
import type { JobRunDependencies } from '../processor-dependencies.ts';

export interface EvaluateJobContext {
  id: string;
  data: EvaluateJobPayload;
  /** Failed attempts before this one, and how many the job has in all (absent: this is the last). */
  attemptsMade?: number;
  maxAttempts?: number;
  updateProgress(progress: EvaluateProgress): Promise<void>;
}

export type EvaluateJobDependencies = JobRunDependencies;

/** The private folder of one attempt (removed before and after it). */
export function evaluateWorkDir(dataDir: string, jobId: string): string {
  return path.join(dataDir, 'tmp', `job-${jobId}`);
}

export async function runEvaluateJob(
  job: EvaluateJobContext,
  deps: EvaluateJobDependencies,
): Promise<EvaluateJobResult> {
  const { data } = job;
  const workDir = evaluateWorkDir(deps.dataDir, job.id);
  const cancel = watchCancel(deps.redis, deps.prefix, job.id, deps.signal, deps.cancelPollMs);
  const adapters: Array<string | null> = data.adapters.length > 0 ? data.adapters : [null];
  const total = adapters.length * data.datasets.length;
  const disposers: Array<() => void> = [];
  try {
    await rm(workDir, { recursive: true, force: true });
    if (await cancel.userCancelled()) throw new UnrecoverableError(CANCELLED_REASON);
    await job.updateProgress({ phase: 'loading', done: 0, total });
    const modelRecord = await requireArtifact(deps.store, data.model, 'model');
    if (!modelRecord.files.some((file) => file.name === MODEL_CONFIG)) {
      throw new InvalidJobInputError(
        `${modelRecord.id} has no ${MODEL_CONFIG}: a bare checkpoint can be merged but not run`,
      );
    }
    const datasets = [];
    for (const id of data.datasets) {
      const record = await requireArtifact(deps.store, id, 'dataset');
      const file = await deps.store.localFile(record, DATASET_FILE, path.join(workDir, 'datasets'));
      datasets.push({ id, dataset: await readDataset(file) });
    }
    await initBackend({ ...backendOptions(deps.runtime), log: () => undefined });
    const model = await loadModel(await deps.store.linkFolder(modelRecord, path.join(workDir, 'model')));
    disposers.push(() => model.dispose());
    const results: EvaluationEntry[] = [];
    let folders = 0;
    const linked = (record: ArtifactRecord) =>
      deps.store.linkFolder(record, path.join(workDir, `head-${folders++}`));
    for (const [i, adapterId] of adapters.entries()) {
      let adapter: LoadedAdapter | null = null;
      if (adapterId) {
        const record = await requireArtifact(deps.store, adapterId, 'adapter');
        const loaded = await loadAdapter(
          await deps.store.linkFolder(record, path.join(workDir, `adapter-${i}`)),
          model,
        );
        disposers.push(() => loaded.dispose());
        adapter = loaded;
      }
      const ctx = contextFor(model, adapter);
      for (const { id, dataset } of datasets) {
        if (cancel.signal.aborted) throw new Error('evaluation stopped');
        const headSpec = data.heads?.[id] ?? null;
        const head = headSpec ? await resolveHead(deps.store, headSpec, linked) : null;
        const extra = head ? headOverrides(head) : null;
        const measured = await evaluateModel(
          model,
          extra
            ? new ForwardContext(
                model.params,
                adapter?.modules,
                new Map([...(adapter?.overrides ?? []), ...extra]),
              )
            : ctx,
          dataset,
        ).finally(() => {
          for (const t of extra?.values() ?? []) t.dispose();
        });
        results.push({
          adapter: adapterId,
          dataset: id,
          head: headSpec,
          task: dataset.task,
          split: dataset.split,
          examples: measured.examples,
          accuracy: measured.accuracy,
          loss: measured.loss,
        });
        await job.updateProgress({ phase: 'evaluating', done: results.length, total });
      }
    }
    if (await cancel.userCancelled()) throw new UnrecoverableError(CANCELLED_REASON);
    await job.updateProgress({ phase: 'done', done: total, total });
    return { model: modelRecord.id, results };
  } catch (error) {
    return await failJob(error, {
      redis: deps.redis,
      prefix: deps.prefix,
      jobId: job.id,
      cancelledByUser: await cancel.cancelledByUser(),
      aborted: cancel.signal.aborted,
      finalAttempt: (job.attemptsMade ?? 0) + 1 >= (job.maxAttempts ?? 1),
    });
  } finally {
    cancel.stop();
    for (const dispose of disposers.reverse()) dispose();
    await rm(workDir, { recursive: true, force: true });
  }
}
