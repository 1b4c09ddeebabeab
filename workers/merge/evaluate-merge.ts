// Evaluates artifacts per task through each task's head: the merged artifact, every reference on its own task,
// and the base model where a head makes it meaningful. Every (artifact, head, dataset) evaluation goes through
// the Redis cache, so references and base rows are run once however many merges read them.
import path from 'node:path';
import type { Redis } from 'ioredis';
import { type CachedEvaluation, EvaluationCache, evaluationKey } from '../../src/eval/evaluation-cache.ts';
import { headOverrides, readTaskHeads, type TaskHead } from '../../src/eval/heads.ts';
import type { ReportEvaluation } from '../../src/eval/report/report-types.ts';
import type { RuntimeSettings } from '../../src/config.ts';
import { backendOptions, initBackend } from '../../src/model/backend.ts';
import { evaluateModel } from '../../src/model/evaluate-model.ts';
import { ForwardContext } from '../../src/model/forward-context.ts';
import { type LoadedModel, loadModel } from '../../src/model/load-model.ts';
import { type LoadedAdapter, loadAdapter } from '../../src/model/lora/peft-adapter.ts';
import { type Dataset, readDataset } from '../../src/model/train/dataset.ts';
import type { EvaluationTask } from '../../src/queue/index.ts';
import {
  type ArtifactRecord,
  type ArtifactStore,
  DATASET_FILE,
  requireArtifact,
  TASK_HEADS_FILE,
} from '../../src/store/index.ts';
import { InvalidJobInputError } from '../job-failure.ts';
import { resolveHead } from '../resolve-head.ts';

export type Split = 'validation' | 'test';

/** One evaluation to make: `artifact` read through `head` over `dataset` (task and split say which row). */
interface Subject {
  artifact: string;
  head: string;
  dataset: string;
  task: EvaluationTask;
  split: Split;
  /** Read the head from the merged artifact's own per-task heads file. */
  fromTaskHeads: boolean;
}

export interface EvaluateMergeOptions {
  store: ArtifactStore;
  redis: Redis;
  prefix: string;
  /** LORAFUSE_BACKEND and LORAFUSE_SIMD_KERNELS, from src/config.ts. */
  runtime: RuntimeSettings;
  workDir: string;
  /** The merged artifact (adapter or model); null: the references and base rows only. */
  merged: ArtifactRecord | null;
  tasks: EvaluationTask[];
  baseModel: string | null;
  splits: Split[];
  /** Also evaluate references and the base (a search child leaves that to its parent's report). */
  references: boolean;
  signal?: AbortSignal;
  onProgress?: (done: number, total: number) => void;
}

export interface MergeEvaluations {
  evaluations: ReportEvaluation[];
  cacheHits: number;
}

/** The evaluations a report needs, in a stable order (task, split, then merged/reference/base). */
function subjectsOf(options: EvaluateMergeOptions): Subject[] {
  const out: Subject[] = [];
  for (const task of options.tasks) {
    for (const split of options.splits) {
      const dataset = split === 'validation' ? task.validation : task.test;
      if (options.merged) {
        out.push({ artifact: options.merged.id, head: task.head, dataset, task, split, fromTaskHeads: true });
      }
      if (!options.references) continue;
      if (task.reference) {
        out.push({ artifact: task.reference, head: task.head, dataset, task, split, fromTaskHeads: false });
      }
      // The base read through the task's own head (its "zero-shot" row); with the model's own classifier it
      // would answer some other task, so it is left out.
      if (options.baseModel && task.head !== 'model') {
        out.push({
          artifact: options.baseModel,
          head: task.head,
          dataset,
          task,
          split,
          fromTaskHeads: false,
        });
      }
    }
  }
  const seen = new Set<string>();
  return out.filter((s) => {
    const key = evaluationKey(s.artifact, s.head, s.dataset);
    if (seen.has(key)) return false;
    seen.add(key);
    return true;
  });
}

export async function evaluateMerge(options: EvaluateMergeOptions): Promise<MergeEvaluations> {
  const { store } = options;
  const cache = new EvaluationCache(options.redis, options.prefix);
  const subjects = subjectsOf(options);
  const records = new Map<string, ArtifactRecord>(
    options.merged ? [[options.merged.id, options.merged]] : [],
  );
  const record = async (id: string) => {
    if (!records.has(id)) {
      const found = await store.get(id);
      if (!found) throw new InvalidJobInputError(`artifact ${id} no longer exists`);
      records.set(id, found);
    }
    return records.get(id)!;
  };
  const datasets = new Map<string, Dataset>();
  const models = new Map<string, LoadedModel>();
  const adapters = new Map<string, LoadedAdapter>();
  let folders = 0;
  const linked = async (r: ArtifactRecord) =>
    store.linkFolder(r, path.join(options.workDir, `eval-${folders++}`));
  let backendReady = false;

  const modelFor = async (id: string): Promise<LoadedModel> => {
    if (!models.has(id)) {
      if (!backendReady) await initBackend({ ...backendOptions(options.runtime), log: () => undefined });
      backendReady = true;
      models.set(id, await loadModel(await linked(await record(id))));
    }
    return models.get(id)!;
  };
  const runnable = async (id: string): Promise<{ model: LoadedModel; adapter: LoadedAdapter | null }> => {
    const r = await record(id);
    if (r.kind === 'model') return { model: await modelFor(id), adapter: null };
    const baseId = options.baseModel ?? r.baseModel ?? null;
    if (!baseId) throw new InvalidJobInputError(`adapter ${id} has no base model to run on`);
    const model = await modelFor(baseId);
    if (!adapters.has(id)) adapters.set(id, await loadAdapter(await linked(r), model));
    return { model, adapter: adapters.get(id)! };
  };
  const headFor = async (subject: Subject): Promise<TaskHead | null> => {
    if (subject.fromTaskHeads && options.merged) {
      const file = store.filePaths(options.merged)[TASK_HEADS_FILE];
      const kept = file ? (await readTaskHeads(file)).get(subject.task.name) : undefined;
      if (kept) return kept;
    }
    return resolveHead(store, subject.head, linked);
  };

  const evaluations: ReportEvaluation[] = [];
  try {
    for (const [i, subject] of subjects.entries()) {
      if (options.signal?.aborted) throw new Error('evaluation stopped');
      const key = evaluationKey(subject.artifact, subject.head, subject.dataset);
      const measured = await cache.through(key, async (): Promise<CachedEvaluation> => {
        if (!datasets.has(subject.dataset)) {
          const r = await requireArtifact(store, subject.dataset, 'dataset');
          datasets.set(subject.dataset, await readDataset(store.filePaths(r)[DATASET_FILE]));
        }
        const { model, adapter } = await runnable(subject.artifact);
        const head = await headFor(subject);
        const overrides = new Map(adapter?.overrides ?? []);
        const extra = head ? headOverrides(head) : new Map();
        for (const [name, t] of extra) overrides.set(name, t);
        try {
          const ctx = new ForwardContext(model.params, adapter?.modules, overrides);
          const result = await evaluateModel(model, ctx, datasets.get(subject.dataset)!);
          return {
            examples: result.examples,
            accuracy: result.accuracy,
            loss: result.loss,
            predictions: [...result.predictions],
          };
        } finally {
          for (const t of extra.values()) t.dispose();
        }
      });
      evaluations.push({
        key,
        artifact: subject.artifact,
        head: subject.head,
        dataset: subject.dataset,
        task: subject.task.name,
        split: subject.split,
        ...measured,
      });
      options.onProgress?.(i + 1, subjects.length);
    }
  } finally {
    for (const adapter of adapters.values()) adapter.dispose();
    for (const model of models.values()) model.dispose();
  }
  return { evaluations, cacheHits: cache.hits };
}
