// A small two-task case where plain averaging interferes, fine-tuned with lorafuse's own runtime: the tiny
// MLP fixture (48 inputs, 4 classes) learns task A from inputs 0..23 and task B from inputs 24..47 (the other
// half is zero), each with its own random linear labelling. Each fine-tuned model keeps its task head, so
// task t is always read with head t. Also the merge evaluation the tests compare methods with.
import { copyFile, mkdir } from 'node:fs/promises';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { fileResolver } from '../../../src/cli/merge-command.ts';
import { headOverrides, loadDataDrivenInputs } from '../../../src/eval/data-driven/merge-inputs.ts';
import type { TaskData } from '../../../src/eval/data-driven/method-run.ts';
import {
  type DataDrivenMergeResult,
  runDataDrivenMerge,
} from '../../../src/eval/data-driven/run-data-driven-merge.ts';
import {
  closePlan,
  executeMerge,
  parseRecipe,
  planDataDrivenMerge,
  planMerge,
} from '../../../src/merge/index.ts';
import { evaluateModel } from '../../../src/model/evaluate-model.ts';
import { ForwardContext } from '../../../src/model/forward-context.ts';
import { type HostTensor, readCheckpoint, writeSafetensorsFile } from '../../../src/model/io/host-tensors.ts';
import { loadModel } from '../../../src/model/load-model.ts';
import { loadAdapter } from '../../../src/model/lora/peft-adapter.ts';
import { seededUniform } from '../../../src/model/random.ts';
import type { Dataset } from '../../../src/model/train/dataset.ts';
import { finetune } from '../../../src/model/train/finetune.ts';
import { FIXTURES, scratchDir } from '../../model/helpers.ts';

export const MLP_BASE = path.join(FIXTURES, 'mlp', 'model');
const FEATURES = 48;
const CLASSES = 4;

/**
 * Task `index` of `count`: it reads its own block of FEATURES / count inputs (the others are zero); the label
 * is the argmax of a seeded linear map of that block.
 */
export function blockTask(index: number, count: number, n: number, split: string, dataSeed: number): Dataset {
  const width = FEATURES / count;
  const mapRandom = seededUniform(1000 + index); // the task's labelling is fixed; the rows vary with dataSeed
  const map = Float32Array.from({ length: width * CLASSES }, () => mapRandom() * 2 - 1);
  const uniform = seededUniform(dataSeed * 7 + index);
  const pixels = new Float32Array(n * FEATURES);
  const labels = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    const scores = new Float64Array(CLASSES);
    for (let p = 0; p < width; p++) {
      const x = uniform() * 2 - 1;
      pixels[i * FEATURES + index * width + p] = x;
      for (let c = 0; c < CLASSES; c++) scores[c] += x * map[p * CLASSES + c];
    }
    labels[i] = scores.indexOf(Math.max(...scores));
  }
  return {
    inputs: new Map([['pixel_values', { dtype: 'F32', shape: [n, 3, 4, 4], data: pixels }]]),
    labels,
    task: `task-${index}`,
    split,
    classNames: ['c0', 'c1', 'c2', 'c3'],
  };
}

export interface TaskCase {
  dir: string;
  inputs: string[];
  tasks: TaskData[];
  tests: Dataset[];
}

/** Fine-tunes one model (mode full) or adapter (lora/llora) per task from the MLP fixture. */
export async function buildTaskCase(
  mode: 'full' | 'lora' | 'llora',
  count = 2,
  learningRate?: number,
): Promise<TaskCase> {
  const dir = scratchDir();
  const inputs: string[] = [];
  const tasks = Array.from({ length: count }, (_, i) => i);
  for (const index of tasks) {
    const outDir = path.join(dir, `${mode}-${index}`);
    await finetune({
      modelDir: MLP_BASE,
      dataset: blockTask(index, count, 512, 'train', 1),
      mode,
      outDir,
      steps: 120,
      batchSize: 32,
      learningRate: learningRate ?? (mode === 'full' ? 5e-3 : 1e-2),
      rank: 4,
      // LoRA adapts the first layer only (the head is trained whole): the tasks meet only through ΔW of one layer.
      targetModules: mode === 'full' ? undefined : ['layers.0'],
      seed: 7, // shared: L-LoRA adapters meant to be merged share A₀
      validationFraction: 0,
      evalEvery: 1000,
    });
    inputs.push(outDir);
  }
  return {
    dir,
    inputs,
    tasks: tasks.map((index) => ({
      name: `task-${index}`,
      validation: blockTask(index, count, 128, 'validation', 2),
    })),
    tests: tasks.map((index) => blockTask(index, count, 512, 'test', 3)),
  };
}

/** Models near the base (θ₀ + seeded noise of the given scale), for tests of the math rather than of merging. */
export async function perturbedModels(count: number, scale: number): Promise<string[]> {
  const dir = scratchDir();
  const base = await readCheckpoint(MLP_BASE);
  const dirs: string[] = [];
  for (let i = 0; i < count; i++) {
    const uniform = seededUniform(500 + i);
    const out = path.join(dir, `perturbed-${i}`);
    await mkdir(out, { recursive: true });
    const entries: Array<[string, HostTensor]> = [...base].map(([name, t]) => [
      name,
      { ...t, data: Float32Array.from(t.data as Float32Array, (v) => v + scale * (uniform() * 2 - 1)) },
    ]);
    await writeSafetensorsFile(path.join(out, 'model.safetensors'), entries);
    await copyFile(path.join(MLP_BASE, 'config.json'), path.join(out, 'config.json'));
    dirs.push(out);
  }
  return dirs;
}

/** Runs a data-driven method on the case (task i ↔ input i), as the worker does. */
export async function runMethod(
  setup: TaskCase,
  recipe: Record<string, unknown>,
  seed = 1,
): Promise<DataDrivenMergeResult & { outDir: string }> {
  const parsed = parseRecipe(recipe);
  const plan = await planDataDrivenMerge(parsed, fileResolver(setup.dir), setup.tasks.length);
  const outDir = path.join(setup.dir, `out-${plan.method.name}-${Math.random().toString(36).slice(2)}`);
  const tensorsBefore = tf.memory().numTensors;
  const result = await runDataDrivenMerge({
    plan,
    inputDirs: plan.inputs.map((ref) => path.resolve(setup.dir, ref)),
    baseDir: plan.base ? path.resolve(setup.dir, plan.base) : undefined,
    tasks: setup.tasks,
    seed,
    outDir,
  });
  // Every tensor a method makes (merged weights, variables, gradients, Grams, Fishers) is released.
  const leaked = tf.memory().numTensors - tensorsBefore;
  if (leaked !== 0) throw new Error(`${plan.method.name} left ${leaked} tensors allocated`);
  return { ...result, outDir };
}

/** Plain averaging by lorafuse's own merge engine (mergekit `linear`, equal weights). */
export async function plainAverage(
  setup: TaskCase,
  kind: 'model' | 'adapter',
  extra: Record<string, unknown> = {},
): Promise<string> {
  const recipe = parseRecipe({
    merge_method: 'linear',
    models: setup.inputs.map((input) => ({
      [kind]: path.relative(setup.dir, input),
      parameters: { weight: 1 },
    })),
    ...extra,
  });
  const plan = await planMerge(recipe, fileResolver(setup.dir));
  const outDir = path.join(setup.dir, `average-${kind}-${Math.random().toString(36).slice(2)}`);
  try {
    await executeMerge(plan, { outDir });
  } finally {
    await closePlan(plan);
  }
  return outDir;
}

export interface Scores {
  accuracy: number[];
  loss: number[];
  meanAccuracy: number;
}

/**
 * Test accuracy per task of a merged model folder (or an adapter over the base), task t read with input t's
 * head (its modules_to_save head for adapters).
 */
export async function scoreMerged(
  setup: TaskCase,
  merged: { model?: string; adapter?: string },
  kind: 'models' | 'adapters',
): Promise<Scores> {
  const model = await loadModel(merged.model ?? MLP_BASE);
  const adapter = merged.adapter ? await loadAdapter(merged.adapter, model) : null;
  const heads = await loadDataDrivenInputs({
    kind,
    inputDirs: setup.inputs,
    baseDir: kind === 'adapters' ? MLP_BASE : undefined,
  });
  try {
    const accuracy: number[] = [];
    const loss: number[] = [];
    for (let t = 0; t < setup.tests.length; t++) {
      const overrides = new Map<string, tf.Tensor>(headOverrides(heads, t));
      const ctx = new ForwardContext(model.params, adapter?.modules ?? new Map(), overrides);
      const result = await evaluateModel(model, ctx, setup.tests[t]);
      accuracy.push(result.accuracy);
      loss.push(result.loss);
    }
    return { accuracy, loss, meanAccuracy: accuracy.reduce((s, a) => s + a, 0) / accuracy.length };
  } finally {
    heads.dispose();
    adapter?.dispose();
    model.dispose();
  }
}
