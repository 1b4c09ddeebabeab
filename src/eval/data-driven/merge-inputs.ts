// The inputs of a data-driven merge on the runtime: every input as its dense weights θᵢ (a fine-tuned model,
// or an adapter applied to its base: W₀ + ΔWᵢ with ΔWᵢ the adapter's exact update, L-LoRA included), the base
// θ₀ when there is one, the adapters as loaded (for parameter-space methods) and each task's head.
// Everything is held in the runtime's layout (linear weights [in, out]); task i is input i.
import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { readCheckpoint, type HostTensor, writeSafetensorsFile } from '../../model/io/host-tensors.ts';
import { type LoadedModel, loadModel } from '../../model/load-model.ts';
import { loraUpdate } from '../../model/lora/lora-module.ts';
import { type LoadedAdapter, loadAdapter } from '../../model/lora/peft-adapter.ts';
import { ParamStore } from '../../model/params.ts';
import { shuffled, seededUniform } from '../../model/random.ts';
import { type Dataset, selectRows } from '../../model/train/dataset.ts';
import { headOverrides as headTensors, type TaskHead } from '../heads.ts';

export interface DataDrivenInputs {
  kind: 'models' | 'adapters';
  /** The model the runtime runs: the base when there is one, else the first input (config, architecture). */
  runtime: LoadedModel;
  /** θ₀: the base model's weights, or null (Fisher and RegMean over models need none). */
  base: ParamStore | null;
  /** θᵢ for every input, dense, in recipe order. */
  dense: ParamStore[];
  /** The adapters as loaded on the base (adapter inputs only). */
  adapters: LoadedAdapter[];
  /** Tensor names of the task heads (the architecture's head modules): task t reads head t. */
  headNames: string[];
  /**
   * Heads tasks name that answer another number of classes than the inputs' (a binary task on a 10-class
   * body): kept beside θₜ, not in it, since the methods combine θₜ's tensors across tasks; task t is read
   * through its entry here when it has one (taskContextHead).
   */
  taskHeads?: Array<Map<string, tf.Tensor> | undefined>;
  /** The folder whose config.json and non-float tensors a model output copies. */
  referenceDir: string;
  dispose(): void;
}

/** Loads the inputs from folders: models (and an optional base), or adapters over a base. */
export async function loadDataDrivenInputs(options: {
  kind: 'models' | 'adapters';
  inputDirs: readonly string[];
  baseDir?: string;
  /** Adapters: also build the dense θᵢ (delta-space methods); parameter-space methods skip it. */
  dense?: boolean;
}): Promise<DataDrivenInputs> {
  const loaded: LoadedModel[] = [];
  const adapters: LoadedAdapter[] = [];
  const extra: ParamStore[] = [];
  const disposeAll = () => {
    for (const a of adapters) a.dispose();
    for (const s of extra) s.dispose();
    for (const m of loaded) m.dispose();
  };
  try {
    if (options.kind === 'models') {
      const base = options.baseDir ? await loadModel(options.baseDir) : null;
      if (base) loaded.push(base);
      const models: LoadedModel[] = [];
      for (const dir of options.inputDirs) {
        const model = await loadModel(dir);
        loaded.push(model);
        models.push(model);
      }
      const runtime = base ?? models[0];
      return {
        kind: 'models',
        runtime,
        base: base?.params ?? null,
        dense: models.map((m) => m.params),
        adapters,
        headNames: headTensorNames(runtime),
        referenceDir: runtime.dir,
        dispose: disposeAll,
      };
    }
    if (!options.baseDir) throw new Error('adapter inputs need the base model');
    const base = await loadModel(options.baseDir);
    loaded.push(base);
    for (const dir of options.inputDirs) adapters.push(await loadAdapter(dir, base));
    const headNames = headTensorNames(base);
    const taskHeads = adapters.map((adapter) => ownClassHead(base, headNames, adapter));
    const dense = options.dense === false ? [] : adapters.map((adapter) => denseAdapterModel(base, adapter));
    extra.push(...dense);
    const inputs: DataDrivenInputs = {
      kind: 'adapters',
      runtime: base,
      base: base.params,
      dense,
      adapters,
      headNames,
      ...(taskHeads.some((h) => h !== undefined) ? { taskHeads } : {}),
      referenceDir: base.dir,
      dispose: () => {
        disposeTaskHeads(inputs);
        disposeAll();
      },
    };
    return inputs;
  } catch (error) {
    disposeAll();
    throw error;
  }
}

/**
 * An adapter that saved a head answering another number of classes than the base's (one fine-tuned on a binary
 * task over a 10-class body): that head is its task's own, so it leaves the adapter's saved modules (which the
 * methods combine across tasks, and which must keep the body's shape) and is kept beside θₜ as the task's head.
 * A saved weight without a bias reads with bias 0 when the body's classifier has one, as a stored head does.
 */
function ownClassHead(
  base: LoadedModel,
  headNames: readonly string[],
  adapter: LoadedAdapter,
): Map<string, tf.Tensor> | undefined {
  const weightName = headNames.find((name) => name.endsWith('.weight'));
  const saved = weightName ? adapter.overrides.get(weightName) : undefined;
  if (!weightName || !saved) return undefined;
  const bodyShape = base.params.get(weightName).shape;
  // On the runtime a head's weight is [features, classes]: only the class axis may differ.
  if (saved.shape.join() === bodyShape.join()) return undefined;
  if (saved.shape.length !== 2 || saved.shape[0] !== bodyShape[0]) {
    throw new Error(
      `an adapter saves ${weightName} as [${saved.shape}], which the model's [${bodyShape}] cannot read`,
    );
  }
  const head = new Map<string, tf.Tensor>();
  for (const name of headNames) {
    const tensor = adapter.overrides.get(name);
    adapter.overrides.delete(name);
    head.set(name, tensor ?? tf.zeros([saved.shape[1]]));
  }
  return head;
}

/**
 * Puts each task's own head (when it names one) in place of its input's: in θₜ and, for adapters, in the
 * adapter's saved modules, so every method reads task t through head t. A head must have the shape of the
 * tensor it replaces (the runtime runs one architecture for all tasks).
 */
export function applyTaskHeads(
  inputs: DataDrivenInputs,
  heads: ReadonlyArray<TaskHead | null | undefined>,
): void {
  for (const [t, head] of heads.entries()) {
    if (!head) continue;
    const tensors = headTensors(head);
    const current = (name: string) =>
      inputs.runtime.params.has(name) ? inputs.runtime.params.get(name) : null;
    // On the runtime a head's weight is [features, classes] and its bias [classes]: only the last axis may differ.
    const otherClasses = [...tensors].every(([name, tensor]) => {
      const shape = current(name)?.shape;
      return (
        shape !== undefined &&
        shape.join() !== tensor.shape.join() &&
        shape.length === tensor.shape.length &&
        shape.slice(0, -1).join() === tensor.shape.slice(0, -1).join()
      );
    });
    if (otherClasses && inputs.headNames.every((name) => tensors.has(name))) {
      inputs.taskHeads ??= [];
      for (const tensor of inputs.taskHeads[t]?.values() ?? []) tensor.dispose();
      inputs.taskHeads[t] = tensors;
      continue;
    }
    // A head of the body's shape goes into θₜ: an own-class head the adapter saved no longer reads task t.
    for (const tensor of inputs.taskHeads?.[t]?.values() ?? []) tensor.dispose();
    if (inputs.taskHeads) inputs.taskHeads[t] = undefined;
    try {
      for (const [name, tensor] of tensors) {
        if (current(name)?.shape.join() !== tensor.shape.join()) {
          throw new Error(
            `task ${t + 1}'s head gives ${name} the shape [${tensor.shape}], the model has [${current(name)?.shape ?? 'none'}]`,
          );
        }
        const targets = [inputs.dense[t]?.tensors, inputs.adapters[t]?.overrides];
        for (const target of targets) {
          if (!target) continue;
          target.get(name)?.dispose();
          target.set(name, tf.clone(tensor));
        }
      }
    } finally {
      for (const tensor of tensors.values()) tensor.dispose();
    }
  }
}

/** The head modules' tensors present in the model (e.g. classifier.weight, classifier.bias). */
export function headTensorNames(model: LoadedModel): string[] {
  return model.architecture
    .headModules(model.config)
    .flatMap((module) => [`${module}.weight`, `${module}.bias`])
    .filter((name) => model.params.has(name));
}

/** A new store holding `tensors` with the layout bookkeeping of `reference` (which linear weights are transposed). */
export function storeLike(reference: ParamStore, tensors: Map<string, tf.Tensor>): ParamStore {
  const store = new ParamStore();
  for (const [name, tensor] of tensors) {
    store.tensors.set(name, tensor);
    const hfShape = reference.transposed.get(name);
    if (hfShape) store.transposed.set(name, hfShape);
  }
  return store;
}

/**
 * θ = W₀ + ΔW for one adapter: ΔWᵀ (the runtime's [in, out] layout) is the module's update applied to the
 * identity, so plain LoRA (s·B·A) and L-LoRA (its linearization around A₀, B₀) are both exact; saved modules
 * (the head) replace the base's.
 */
export function denseAdapterModel(base: LoadedModel, adapter: LoadedAdapter): ParamStore {
  const tensors = new Map<string, tf.Tensor>();
  for (const name of base.params.names()) {
    const override = adapter.overrides.get(name);
    tensors.set(name, tf.clone(override ?? base.params.get(name)));
  }
  for (const [module, lora] of adapter.modules) {
    const name = `${module}.weight`;
    const weight = tensors.get(name)!;
    const updated = tf.tidy(() => {
      const inFeatures = weight.shape[0];
      return tf.add(weight, loraUpdate(tf.eye(inFeatures) as tf.Tensor2D, lora));
    });
    weight.dispose();
    tensors.set(name, updated);
  }
  return storeLike(base.params, tensors);
}

/** Task t's head as ForwardContext overrides: the head tensors of θₜ. */
export function headOverrides(inputs: DataDrivenInputs, task: number): Map<string, tf.Tensor> {
  const own = inputs.taskHeads?.[task];
  if (own) return own;
  const source = inputs.dense[task];
  return new Map(inputs.headNames.map((name) => [name, source.get(name)]));
}

/** The first `count` rows of a dataset (all when it has fewer). */
export function firstRows(dataset: Dataset, count: number): Dataset {
  const n = Math.min(count, dataset.labels.length);
  return selectRows(
    dataset,
    Array.from({ length: n }, (_, i) => i),
  );
}

/** `count` rows drawn without replacement with the seed (all rows, shuffled, when it has fewer). */
export function sampledRows(dataset: Dataset, count: number, seed: number): Dataset {
  const order = shuffled(dataset.labels.length, seededUniform(seed));
  return selectRows(dataset, order.slice(0, Math.min(count, order.length)));
}

/**
 * Writes a model folder: config.json of the reference, the merged float tensors in HF layout and the
 * reference's non-float tensors (position ids), in the reference checkpoint's order.
 */
export async function writeModelFolder(
  outDir: string,
  store: ParamStore,
  referenceDir: string,
): Promise<string[]> {
  const reference = await readCheckpoint(referenceDir);
  const entries: Array<[string, HostTensor]> = [];
  for (const [name, host] of reference) {
    if (store.has(name)) {
      const merged = await store.toHost(name);
      if (!merged.data.every(Number.isFinite)) throw new Error(`the merged tensor ${name} is not finite`);
      entries.push([name, merged]);
    } else entries.push([name, host]);
  }
  await writeSafetensorsFile(path.join(outDir, 'model.safetensors'), entries, { format: 'pt' });
  await writeFile(path.join(outDir, 'config.json'), await readFile(path.join(referenceDir, 'config.json')));
  return ['config.json', 'model.safetensors'];
}

/** What task t reads through besides `overrides` (an adapter's saved modules): its own head when it names one. */
export function taskContextHead(
  inputs: DataDrivenInputs,
  task: number,
  overrides: Map<string, tf.Tensor>,
): Map<string, tf.Tensor> {
  const own = inputs.taskHeads?.[task];
  return own ? new Map([...overrides, ...own]) : overrides;
}

/** Frees the heads applyTaskHeads kept beside θₜ. */
export function disposeTaskHeads(inputs: DataDrivenInputs): void {
  for (const head of inputs.taskHeads ?? []) for (const tensor of head?.values() ?? []) tensor.dispose();
  inputs.taskHeads = undefined;
}
