// Runs one data-driven merge end to end from folders: loads the inputs on the runtime, hands each method its
// tasks' validation data, writes the merged model or adapter into `outDir` and returns what was learned.
// The API and the worker give task i ↔ recipe input i; this module does not know about artifacts.
import { mkdir } from 'node:fs/promises';
import type { DataDrivenPlan } from '../../merge/index.ts';
import { runAdamerging } from './adamerging.ts';
import { runFisherMerging } from './fisher-merging.ts';
import { runLorahub } from './lorahub.ts';
import { applyTaskHeads, disposeTaskHeads, loadDataDrivenInputs, writeModelFolder } from './merge-inputs.ts';
import type { DataDrivenReport, MethodOutput, MethodRun, TaskData } from './method-run.ts';
import { runRegmean } from './regmean.ts';

export type { DataDrivenReport, TaskData } from './method-run.ts';

/** The implementation of every data-driven method in the registry, by name. */
const RUNNERS: Record<string, (run: MethodRun) => Promise<MethodOutput>> = {
  lorahub: runLorahub,
  adamerging: runAdamerging,
  fisher: runFisherMerging,
  regmean: runRegmean,
};

export interface DataDrivenMergeRequest {
  plan: DataDrivenPlan;
  /** The inputs' folders, in recipe order. */
  inputDirs: readonly string[];
  /** base_model's folder, when the recipe has one. */
  baseDir?: string;
  /** Task i is input i's task; its validation split is read, through its head when it names one. */
  tasks: readonly TaskData[];
  seed: number;
  outDir: string;
  signal?: AbortSignal;
  onProgress?: (progress: { done: number; total: number }) => void;
}

export interface DataDrivenMergeResult {
  kind: 'model' | 'adapter';
  files: string[];
  report: DataDrivenReport;
}

export async function runDataDrivenMerge(request: DataDrivenMergeRequest): Promise<DataDrivenMergeResult> {
  const { plan } = request;
  const runner = RUNNERS[plan.method.name];
  if (!runner) throw new Error(`no implementation for the data-driven method ${plan.method.name}`);
  if (request.tasks.length !== request.inputDirs.length) {
    throw new Error(
      `${plan.method.name}: ${request.tasks.length} tasks for ${request.inputDirs.length} inputs`,
    );
  }
  for (const task of request.tasks) {
    if (task.validation.labels.length === 0)
      throw new Error(`task ${task.name}: the validation split is empty`);
  }
  const parameterSpace = plan.inputKind === 'adapters' && plan.output === 'adapter';
  const inputs = await loadDataDrivenInputs({
    kind: plan.inputKind,
    inputDirs: request.inputDirs,
    baseDir: request.baseDir,
    dense: !parameterSpace,
  });
  try {
    applyTaskHeads(
      inputs,
      request.tasks.map((task) => task.head),
    );
    const output = await runner({
      inputs,
      tasks: request.tasks,
      params: plan.global,
      perModel: plan.perModel,
      seed: request.seed,
      signal: request.signal,
      progress: (done, total) => request.onProgress?.({ done, total }),
    });
    await mkdir(request.outDir, { recursive: true });
    if (output.kind === 'adapter') {
      try {
        return { kind: 'adapter', files: await output.write(request.outDir), report: output.report };
      } finally {
        output.dispose();
      }
    }
    try {
      const files = await writeModelFolder(request.outDir, output.store, inputs.referenceDir);
      return { kind: 'model', files, report: output.report };
    } finally {
      output.store.dispose();
    }
  } finally {
    disposeTaskHeads(inputs);
    inputs.dispose();
  }
}
