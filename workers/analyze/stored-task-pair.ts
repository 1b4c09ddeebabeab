// Two tasks' inputs (adapters or fine-tuned models of one base) opened from the store on the runtime, each task
// read through its head, with the first examples of each task's dataset: what the weight disentanglement
// ξ(λ₁, λ₂) runs on. POST /v1/analyses and the reports of evaluated merges and searches both open their pair
// here and run the one grid of src/eval/analysis/disentanglement.ts, so the two give the same numbers.
import path from 'node:path';
import {
  adapterPair,
  firstExamples,
  modelPair,
  type TaskHeadOverrides,
  type TaskPairModel,
} from '../../src/eval/analysis/disentanglement.ts';
import { headOverrides } from '../../src/eval/heads.ts';
import type { RuntimeSettings } from '../../src/config.ts';
import { backendOptions, initBackend } from '../../src/model/backend.ts';
import { type LoadedModel, loadModel } from '../../src/model/load-model.ts';
import { loadAdapter } from '../../src/model/lora/peft-adapter.ts';
import { type Dataset, readDataset } from '../../src/model/train/dataset.ts';
import {
  type ArtifactRecord,
  type ArtifactStore,
  DATASET_FILE,
  MODEL_CONFIG,
  requireArtifact,
} from '../../src/store/index.ts';
import { InvalidJobInputError } from '../job-failure.ts';
import { resolveHead } from '../resolve-head.ts';

/** One task of the pair: its input (τₜ), the head it reads through, and its examples. */
export interface StoredTask {
  artifact: string;
  /** `adapter:<id>`, `head:<id>`, `model:<id>`; absent or `model`: the input's own head. */
  head?: string;
  dataset: string;
}

export interface StoredTaskPairSpec {
  baseModel: string;
  kind: 'adapter' | 'model';
  tasks: [StoredTask, StoredTask];
  /** Examples per task: the first ones of each dataset. */
  maxExamples: number;
}

export interface OpenedTaskPair {
  model: LoadedModel;
  pair: TaskPairModel;
  datasets: [Dataset, Dataset];
  /** Frees everything opened on the runtime (the linked folders stay under the caller's work folder). */
  dispose(): void;
}

/** Opens the base, both inputs and the tasks' heads under `workDir` (the caller removes it). */
export async function openStoredTaskPair(
  store: ArtifactStore,
  spec: StoredTaskPairSpec,
  options: { workDir: string; runtime?: RuntimeSettings },
): Promise<OpenedTaskPair> {
  const disposers: Array<() => void> = [];
  const dispose = () => {
    for (const d of disposers.reverse()) d();
    disposers.length = 0;
  };
  const linked = (record: ArtifactRecord, as: string) =>
    store.linkFolder(record, path.join(options.workDir, `${as}-${record.id}`));
  try {
    const modelRecord = await requireArtifact(store, spec.baseModel, 'model');
    if (!modelRecord.files.some((f) => f.name === MODEL_CONFIG)) {
      throw new InvalidJobInputError(
        `${spec.baseModel} has no ${MODEL_CONFIG}: the disentanglement needs a runnable model`,
      );
    }
    const datasets: Dataset[] = [];
    for (const task of spec.tasks) {
      const record = await requireArtifact(store, task.dataset, 'dataset');
      datasets.push(
        firstExamples(await readDataset(store.filePaths(record)[DATASET_FILE]), spec.maxExamples),
      );
    }
    await initBackend({ ...(options.runtime ? backendOptions(options.runtime) : {}), log: () => undefined });
    const model = await loadModel(await linked(modelRecord, 'base'));
    disposers.push(() => model.dispose());
    const heads: TaskHeadOverrides = [null, null];
    for (const index of [0, 1] as const) {
      const given = spec.tasks[index].head;
      if (!given) continue;
      const head = await resolveHead(store, given, (r) => linked(r, `head-${index}`));
      if (!head) continue;
      const overrides = headOverrides(head);
      disposers.push(() => {
        for (const t of overrides.values()) t.dispose();
      });
      heads[index] = overrides;
    }
    let pair: TaskPairModel;
    if (spec.kind === 'adapter') {
      const adapters = [];
      for (const [i, task] of spec.tasks.entries()) {
        const record = await requireArtifact(store, task.artifact, 'adapter');
        const loaded = await loadAdapter(await linked(record, `adapter-${i}`), model);
        disposers.push(() => loaded.dispose());
        adapters.push(loaded);
      }
      pair = adapterPair(model, [adapters[0], adapters[1]], heads);
    } else {
      const models: LoadedModel[] = [];
      for (const [i, task] of spec.tasks.entries()) {
        const record = await requireArtifact(store, task.artifact, 'model');
        const loaded = await loadModel(await linked(record, `model-${i}`));
        disposers.push(() => loaded.dispose());
        models.push(loaded);
      }
      pair = modelPair(model, [models[0], models[1]], heads);
    }
    disposers.push(() => pair.dispose());
    return { model, pair, datasets: [datasets[0], datasets[1]], dispose };
  } catch (error) {
    dispose();
    throw error;
  }
}
