// The data-driven branch of a merge job (LoraHub, AdaMerging, Fisher, RegMean): the recipe is checked as
// the API checked it, the inputs are linked into a private folder for the runtime, each task's validation
// dataset is read (task i ↔ recipe input i) and the method writes its model or adapter into `outDir`.
import { rm } from 'node:fs/promises';
import path from 'node:path';
import type { DataDrivenReport } from '../../src/eval/data-driven/run-data-driven-merge.ts';
import { runDataDrivenMerge } from '../../src/eval/data-driven/run-data-driven-merge.ts';
import { MergePlanError, needsTaskData, planDataDrivenMerge, type Recipe } from '../../src/merge/index.ts';
import type { RuntimeSettings } from '../../src/config.ts';
import { backendOptions, initBackend } from '../../src/model/backend.ts';
import { readDataset } from '../../src/model/train/dataset.ts';
import type { MergeEvaluation } from '../../src/queue/index.ts';
import { type ArtifactStore, ArtifactInputs, DATASET_FILE, requireArtifact } from '../../src/store/index.ts';
import { isTransient } from '../job-failure.ts';
import { resolveHead } from '../resolve-head.ts';

export interface DataDrivenStep {
  recipe: Recipe;
  evaluation?: MergeEvaluation;
  seed: number;
  store: ArtifactStore;
  /** LORAFUSE_BACKEND and LORAFUSE_SIMD_KERNELS, from src/config.ts. */
  runtime: RuntimeSettings;
  /** Where the merged artifact is written (then ingested by the job). */
  outDir: string;
  /** A private scratch folder for the linked inputs (removed here). */
  scratchDir: string;
  signal: AbortSignal;
  onProgress(done: number, total: number): void;
}

export async function runDataDrivenStep(
  step: DataDrivenStep,
): Promise<{ kind: 'model' | 'adapter'; report: DataDrivenReport }> {
  const { recipe, store } = step;
  if (!step.evaluation) throw needsTaskData(recipe.merge_method);
  const resolver = new ArtifactInputs(store);
  let plan: Awaited<ReturnType<typeof planDataDrivenMerge>>;
  try {
    plan = await planDataDrivenMerge(recipe, resolver, step.evaluation.tasks.length);
  } finally {
    await resolver.closeAll();
  }
  await rm(step.scratchDir, { recursive: true, force: true });
  try {
    const kind = plan.inputKind === 'models' ? 'model' : 'adapter';
    const inputDirs: string[] = [];
    for (const [i, id] of plan.inputs.entries()) {
      const record = await requireArtifact(store, id, kind);
      inputDirs.push(await store.linkFolder(record, path.join(step.scratchDir, `input-${i}`)));
    }
    const baseDir = plan.base
      ? await store.linkFolder(
          await requireArtifact(store, plan.base, 'model'),
          path.join(step.scratchDir, 'base'),
        )
      : undefined;
    const tasks = [];
    for (const [i, task] of step.evaluation.tasks.entries()) {
      const record = await requireArtifact(store, task.validation, 'dataset');
      // Task i reads through its own head; its input's own (or `model`) is what the inputs already carry.
      const own = [`adapter:${plan.inputs[i]}`, `model:${plan.inputs[i]}`, 'model'];
      const head = own.includes(task.head)
        ? null
        : await resolveHead(store, task.head, (r) =>
            store.linkFolder(r, path.join(step.scratchDir, `head-${i}`)),
          );
      tasks.push({
        name: task.name,
        validation: await readDataset(store.filePaths(record)[DATASET_FILE]),
        head,
      });
    }
    await initBackend({ ...backendOptions(step.runtime), log: () => undefined });
    try {
      const result = await runDataDrivenMerge({
        plan,
        inputDirs,
        baseDir,
        tasks,
        seed: step.seed,
        outDir: step.outDir,
        signal: step.signal,
        onProgress: ({ done, total }) => step.onProgress(done, total),
      });
      return { kind: result.kind, report: result.report };
    } catch (error) {
      // The runtime's own errors (a dataset the model cannot read) are deterministic: fail at once as bad
      // input. A stop (cancel, shutdown) and system faults keep their way through the job's handler.
      if (step.signal.aborted || isTransient(error)) throw error;
      throw new MergePlanError('data_driven_input', `${recipe.merge_method}: ${(error as Error).message}`);
    }
  } finally {
    await rm(step.scratchDir, { recursive: true, force: true });
  }
}
