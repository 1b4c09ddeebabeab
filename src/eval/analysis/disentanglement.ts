// Weight disentanglement error of two tasks (Ortiz-Jimenez et al. 2023) on the tfjs runtime:
// ξ(λ₁, λ₂) = Σₜ E_{x∈Dₜ}[pred(θ₀+λₜτₜ; x) ≠ pred(θ₀+λ₁τ₁+λ₂τ₂; x)], task t always read through its own head.
// Adapters: θ₀+λ₁τ₁+λ₂τ₂ is the base plus the scaled LoRA deltas, run as one LoRA module of rank R₁+R₂ per
// target ([A₁;A₂] fixed, [λ₁s₁B₁ | λ₂s₂B₂] per grid point), so no dense out×in delta is ever formed.
// Models: the base plus scaled task vectors, built per grid point on the backend. The single-task predictions
// are the grid's λ=0 row and column (when 0 is on the grid), so each grid point costs one pass per task.
import * as tf from '@tensorflow/tfjs';
import { evaluateModel } from '../../model/evaluate-model.ts';
import { ForwardContext } from '../../model/forward-context.ts';
import type { LoadedModel } from '../../model/load-model.ts';
import type { LoraModule } from '../../model/lora/lora-module.ts';
import type { LoadedAdapter } from '../../model/lora/peft-adapter.ts';
import { type Dataset, datasetSize, selectRows } from '../../model/train/dataset.ts';
import { disagreement } from '../metrics.ts';

/** Builds the forward context of θ₀+λ₁τ₁+λ₂τ₂ read through task t's head; `release` frees what it allocated. */
export interface TaskPairModel {
  context(lambda1: number, lambda2: number, task: 0 | 1): ForwardContext;
  release(): void;
  dispose(): void;
}

/** A module's delta as factors on the backend, transposed: ΔW·x = (x·aT)·bT, scale folded into bT. */
interface DeltaTerm {
  aT: tf.Tensor2D;
  bT: tf.Tensor2D;
}

function deltaTerm(lora: LoraModule): DeltaTerm {
  return tf.tidy(() => {
    const s = tf.scalar(lora.scale);
    if (!lora.linearized) return { aT: tf.clone(lora.aT), bT: tf.mul(lora.bT, s) as tf.Tensor2D };
    if (!lora.a0T || !lora.b0T) throw new Error(`L-LoRA module ${lora.module} has no expansion point`);
    // s·[(B−B₀)A₀ + B₀A] = s·[B−B₀ | B₀]·[A₀ ; A]
    if (lora.b0IsZero) return { aT: tf.clone(lora.a0T), bT: tf.mul(lora.bT, s) as tf.Tensor2D };
    return {
      aT: tf.concat([lora.a0T, lora.aT], 1) as tf.Tensor2D,
      bT: tf.mul(tf.concat([tf.sub(lora.bT, lora.b0T), lora.b0T], 0), s) as tf.Tensor2D,
    };
  });
}

/**
 * Heads the tasks read through instead of their inputs' own (a stored head, another artifact's classifier), as
 * forward-context overrides of the head tensors; null keeps the input's own. The caller owns the tensors.
 */
export type TaskHeadOverrides = [Map<string, tf.Tensor> | null, Map<string, tf.Tensor> | null];

/** Two adapters on one base: per module, one rank-(R₁+R₂) LoRA module whose B side carries λ₁ and λ₂. */
export function adapterPair(
  model: LoadedModel,
  adapters: [LoadedAdapter, LoadedAdapter],
  heads: TaskHeadOverrides = [null, null],
): TaskPairModel {
  const readAs = ([0, 1] as const).map(
    (t) => new Map<string, tf.Tensor>([...adapters[t].overrides, ...(heads[t] ?? [])]),
  );
  const modules = [...new Set([...adapters[0].modules.keys(), ...adapters[1].modules.keys()])].sort();
  const fixed = new Map<string, { aT: tf.Tensor2D; parts: Array<{ index: 0 | 1; bT: tf.Tensor2D }> }>();
  for (const module of modules) {
    const terms: Array<{ index: 0 | 1; term: DeltaTerm }> = [];
    for (const index of [0, 1] as const) {
      const lora = adapters[index].modules.get(module);
      if (lora) terms.push({ index, term: deltaTerm(lora) });
    }
    const aT =
      terms.length === 1
        ? terms[0].term.aT
        : (tf.concat(
            terms.map((t) => t.term.aT),
            1,
          ) as tf.Tensor2D);
    if (terms.length > 1) for (const t of terms) t.term.aT.dispose();
    fixed.set(module, { aT, parts: terms.map((t) => ({ index: t.index, bT: t.term.bT })) });
  }
  let live: tf.Tensor[] = [];
  return {
    context(lambda1, lambda2, task) {
      const lambdas = [lambda1, lambda2];
      const lora = new Map<string, LoraModule>();
      for (const [module, { aT, parts }] of fixed) {
        const bT = tf.tidy(() =>
          parts.length === 1
            ? tf.mul(parts[0].bT, lambdas[parts[0].index])
            : tf.concat(
                parts.map((p) => tf.mul(p.bT, lambdas[p.index])),
                0,
              ),
        ) as tf.Tensor2D;
        live.push(bT);
        lora.set(module, { module, rank: aT.shape[1], scale: 1, aT, bT, linearized: false });
      }
      return new ForwardContext(model.params, lora, readAs[task]);
    },
    release() {
      for (const t of live) t.dispose();
      live = [];
    },
    dispose() {
      this.release();
      for (const { aT, parts } of fixed.values()) {
        aT.dispose();
        for (const p of parts) p.bT.dispose();
      }
    },
  };
}

/**
 * Two fine-tuned models on one base: τₜ = θₜ − θ₀ for every base weight outside the head modules, held on the
 * backend; task t reads its own model's head weights (or the head it is given).
 */
export function modelPair(
  base: LoadedModel,
  models: [LoadedModel, LoadedModel],
  heads: TaskHeadOverrides = [null, null],
): TaskPairModel {
  const headModules = base.architecture.headModules(base.config);
  const isHead = (name: string) => headModules.some((h) => name === h || name.startsWith(`${h}.`));
  const taskVectors = new Map<string, [tf.Tensor, tf.Tensor]>();
  const headWeights: [Map<string, tf.Tensor>, Map<string, tf.Tensor>] = [new Map(), new Map()];
  for (const name of base.params.names()) {
    const theta0 = base.params.get(name);
    const own = models.map((m) => (m.params.has(name) ? m.params.get(name) : null));
    if (isHead(name)) {
      for (const index of [0, 1] as const)
        if (own[index]) headWeights[index].set(name, own[index] as tf.Tensor);
      continue;
    }
    if (own.some((t) => !t || t.shape.join() !== theta0.shape.join())) continue;
    taskVectors.set(name, [tf.sub(own[0] as tf.Tensor, theta0), tf.sub(own[1] as tf.Tensor, theta0)]);
  }
  for (const index of [0, 1] as const)
    for (const [name, t] of heads[index] ?? []) headWeights[index].set(name, t);
  let live: tf.Tensor[] = [];
  return {
    context(lambda1, lambda2, task) {
      const overrides = new Map<string, tf.Tensor>(headWeights[task]);
      for (const [name, [tau1, tau2]] of taskVectors) {
        const merged = tf.tidy(() =>
          tf.add(base.params.get(name), tf.add(tf.mul(tau1, lambda1), tf.mul(tau2, lambda2))),
        );
        live.push(merged);
        overrides.set(name, merged);
      }
      return new ForwardContext(base.params, new Map(), overrides);
    },
    release() {
      for (const t of live) t.dispose();
      live = [];
    },
    dispose() {
      this.release();
      for (const pair of taskVectors.values()) for (const t of pair) t.dispose();
    },
  };
}

/** The first `max` examples (datasets are stored shuffled; a prefix keeps the run reproducible). */
export function firstExamples(dataset: Dataset, max: number): Dataset {
  const n = datasetSize(dataset);
  if (n <= max) return dataset;
  return selectRows(
    dataset,
    Int32Array.from({ length: max }, (_, i) => i),
  );
}

export interface DisentanglementResult {
  grid: number[];
  /** error[i][j] = ξ(grid[i], grid[j]). */
  error: number[][];
  /** Per task, the single-task predictions pred(θ₀+λₜτₜ) for each grid value. */
  single: [Int32Array[], Int32Array[]];
  examples: [number, number];
  forwardPasses: number;
}

/** ξ over grid × grid; `onRow` after each λ₁ row (progress, cancellation). */
export async function weightDisentanglement(args: {
  model: LoadedModel;
  pair: TaskPairModel;
  datasets: [Dataset, Dataset];
  grid: number[];
  batchSize?: number;
  onRow?: (done: number, total: number) => void | Promise<void>;
}): Promise<DisentanglementResult> {
  const { model, pair, datasets, grid } = args;
  const batchSize = args.batchSize ?? 256;
  let forwardPasses = 0;
  const predictions = async (lambda1: number, lambda2: number, task: 0 | 1): Promise<Int32Array> => {
    try {
      const ctx = pair.context(lambda1, lambda2, task);
      forwardPasses++;
      return (await evaluateModel(model, ctx, datasets[task], batchSize)).predictions;
    } finally {
      pair.release();
    }
  };
  const single: [Int32Array[], Int32Array[]] = [[], []];
  for (const lambda of grid) {
    single[0].push(await predictions(lambda, 0, 0));
    single[1].push(await predictions(0, lambda, 1));
  }
  const zero = grid.indexOf(0);
  const error: number[][] = [];
  for (const [i, lambda1] of grid.entries()) {
    const row: number[] = [];
    for (const [j, lambda2] of grid.entries()) {
      // θ₀+λ₁τ₁+0·τ₂ is the single-task model of task 1 (and symmetrically): reuse its predictions.
      const both0 = j === zero ? single[0][i] : await predictions(lambda1, lambda2, 0);
      const both1 = i === zero ? single[1][j] : await predictions(lambda1, lambda2, 1);
      row.push(disagreement(single[0][i], both0) + disagreement(single[1][j], both1));
    }
    error.push(row);
    await args.onRow?.(i + 1, grid.length);
  }
  return {
    grid,
    error,
    single,
    examples: [datasetSize(datasets[0]), datasetSize(datasets[1])],
    forwardPasses,
  };
}
