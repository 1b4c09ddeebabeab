// LoraHub: CMA-ES over per-input weights w ∈ [−1.5, 1.5]ⁿ minimising the mean over tasks of the validation
// cross-entropy (task t with its own head) + l1_weight·mean|w|, on at most `examples` rows per task.
// Models: θ₀ + Σ wᵢτᵢ. Adapters (the paper): A = A₀ + Σ wᵢ(Aᵢ − A₀), B likewise, written as an adapter.
import * as tf from '@tensorflow/tfjs';
import { evaluateModel } from '../../model/evaluate-model.ts';
import { ForwardContext } from '../../model/forward-context.ts';
import type { HostTensor } from '../../model/io/host-tensors.ts';
import type { LoraModule } from '../../model/lora/lora-module.ts';
import { type AdapterToWrite, writeAdapter } from '../../model/lora/peft-adapter.ts';
import type { ParamStore } from '../../model/params.ts';
import { deriveSeed } from '../../model/random.ts';
import type { Dataset } from '../../model/train/dataset.ts';
import { minimizeCmaEs } from './cma-es.ts';
import {
  type DataDrivenInputs,
  headOverrides,
  sampledRows,
  storeLike,
  taskContextHead,
} from './merge-inputs.ts';
import { disposeAll, type MethodOutput, type MethodRun } from './method-run.ts';

export const LORAHUB_BOUND = 1.5;

/** θ₀ + Σ wᵢ(θᵢ − θ₀) for every tensor, as a new store (the caller disposes it). */
export function taskArithmeticStore(inputs: DataDrivenInputs, weights: readonly number[]): ParamStore {
  const base = inputs.base!;
  const tensors = new Map<string, tf.Tensor>();
  for (const name of base.names()) {
    tensors.set(
      name,
      tf.tidy(() => {
        const theta0 = base.get(name);
        let merged = theta0;
        weights.forEach((w, i) => {
          merged = tf.add(merged, tf.mul(tf.sub(inputs.dense[i].get(name), theta0), w));
        });
        return merged === theta0 ? tf.clone(theta0) : merged;
      }),
    );
  }
  return storeLike(base, tensors);
}

/** anchor + Σ wᵢ(xᵢ − anchor); the anchor is the expansion point (zero for plain LoRA). */
function combine(
  parts: readonly tf.Tensor[],
  anchor: tf.Tensor | undefined,
  weights: readonly number[],
): tf.Tensor {
  return tf.tidy(() => {
    let merged: tf.Tensor = anchor ?? tf.zerosLike(parts[0]);
    parts.forEach((x, i) => {
      merged = tf.add(merged, tf.mul(anchor ? tf.sub(x, anchor) : x, weights[i]));
    });
    return merged;
  });
}

/** The adapters' LoRA modules combined in parameter space (the first adapter's rank, scale and expansion point). */
export function combinedLoraModules(
  inputs: DataDrivenInputs,
  weights: readonly number[],
): Map<string, LoraModule> {
  const modules = new Map<string, LoraModule>();
  for (const [module, first] of inputs.adapters[0].modules) {
    const all = inputs.adapters.map((adapter) => adapter.modules.get(module)!);
    modules.set(module, {
      ...first,
      aT: combine(
        all.map((m) => m.aT),
        first.a0T,
        weights,
      ) as tf.Tensor2D,
      bT: combine(
        all.map((m) => m.bT),
        first.b0T,
        weights,
      ) as tf.Tensor2D,
    });
  }
  return modules;
}

/** The adapters' saved modules (heads) combined by task arithmetic over the base's. */
function combinedSavedModules(inputs: DataDrivenInputs, weights: readonly number[]): Map<string, tf.Tensor> {
  const saved = new Map<string, tf.Tensor>();
  const names = new Set(inputs.adapters.flatMap((adapter) => [...adapter.overrides.keys()]));
  for (const name of names) {
    const anchor = inputs.base!.get(name);
    // An adapter that saves no such module (one trained through a frozen task head) keeps the base's: its part
    // is the anchor, no change.
    const parts = inputs.adapters.map((adapter) => adapter.overrides.get(name) ?? anchor);
    saved.set(name, combine(parts, anchor, weights));
  }
  return saved;
}

async function meanTaskLoss(
  inputs: DataDrivenInputs,
  examples: readonly Dataset[],
  contextFor: (task: number) => ForwardContext,
): Promise<number> {
  let sum = 0;
  for (let t = 0; t < examples.length; t++) {
    sum += (await evaluateModel(inputs.runtime, contextFor(t), examples[t])).loss;
  }
  return sum / examples.length;
}

export async function runLorahub(run: MethodRun): Promise<MethodOutput> {
  const { inputs, params } = run;
  const n = inputs.kind === 'models' ? inputs.dense.length : inputs.adapters.length;
  const count = Number(params.examples);
  const examples = run.tasks.map((task, t) =>
    sampledRows(task.validation, count, deriveSeed(run.seed, `lorahub-examples-${t}`)),
  );
  const l1 = Number(params.l1_weight);
  const budget = Number(params.max_evaluations);

  const objective = async (weights: number[]): Promise<number> => {
    const penalty = (l1 * weights.reduce((s, w) => s + Math.abs(w), 0)) / n;
    if (inputs.kind === 'models') {
      const merged = taskArithmeticStore(inputs, weights);
      try {
        return (
          (await meanTaskLoss(
            inputs,
            examples,
            (t) => new ForwardContext(merged, new Map(), headOverrides(inputs, t)),
          )) + penalty
        );
      } finally {
        merged.dispose();
      }
    }
    const modules = combinedLoraModules(inputs, weights);
    try {
      const loss = await meanTaskLoss(
        inputs,
        examples,
        (t) =>
          new ForwardContext(inputs.base!, modules, taskContextHead(inputs, t, inputs.adapters[t].overrides)),
      );
      return loss + penalty;
    } finally {
      for (const m of modules.values()) disposeAll([m.aT, m.bT]);
    }
  };

  const search = await minimizeCmaEs(objective, {
    start: new Array<number>(n).fill(1 / n), // plain averaging: the search can only improve on it
    sigma: Number(params.sigma),
    budget,
    lower: -LORAHUB_BOUND,
    upper: LORAHUB_BOUND,
    seed: deriveSeed(run.seed, 'lorahub-cma-es'),
    signal: run.signal,
    onEvaluation: ({ index }) => run.progress(index + 1, budget),
  });
  const report = {
    method: 'lorahub',
    examples: examples.map((e) => e.labels.length),
    coefficients: search.best,
    objective: search.history.map((h, step) => ({ step, value: h.value })),
    details: { bestObjective: search.bestValue, evaluations: search.evaluations, start: 1 / n },
  };
  if (inputs.kind === 'models') {
    return { kind: 'model', store: taskArithmeticStore(inputs, search.best), report };
  }
  const modules = combinedLoraModules(inputs, search.best);
  const saved = combinedSavedModules(inputs, search.best);
  return {
    kind: 'adapter',
    report,
    write: (outDir) => writeCombinedAdapter(inputs, modules, saved, outDir),
    dispose: () => {
      for (const m of modules.values()) disposeAll([m.aT, m.bT]);
      disposeAll(saved.values());
    },
  };
}

async function hostOf(t: tf.Tensor, transposeBack: boolean, shape?: number[]): Promise<HostTensor> {
  const back = transposeBack ? tf.transpose(t) : t;
  const data = (await back.data()) as Float32Array;
  if (back !== t) back.dispose();
  return { dtype: 'F32', shape: shape ?? back.shape, data };
}

/** A PEFT folder in the first adapter's format (config, naming, L-LoRA expansion point) with the merged factors. */
async function writeCombinedAdapter(
  inputs: DataDrivenInputs,
  modules: Map<string, LoraModule>,
  saved: Map<string, tf.Tensor>,
  outDir: string,
): Promise<string[]> {
  const first = inputs.adapters[0];
  const factors: AdapterToWrite['factors'] = new Map();
  const init: NonNullable<AdapterToWrite['init']> = new Map();
  for (const [module, lora] of modules) {
    factors.set(module, { a: await hostOf(lora.aT, true), b: await hostOf(lora.bT, true) });
    if (lora.a0T && lora.b0T) {
      init.set(module, { a: await hostOf(lora.a0T, true), b: await hostOf(lora.b0T, true) });
    }
  }
  const savedHost = new Map<string, HostTensor>();
  for (const [name, tensor] of saved) {
    const hfShape = inputs.base!.transposed.get(name);
    savedHost.set(name, await hostOf(tensor, hfShape !== undefined, hfShape));
  }
  return writeAdapter(outDir, {
    config: first.config,
    modelType: inputs.runtime.config.model_type,
    naming: first.naming,
    factors,
    saved: savedHost,
    init: init.size > 0 ? init : undefined,
    extras: {
      format: 'lorafuse-adapter',
      mode: first.extras?.mode ?? 'lora',
      seed: first.extras?.seed,
      naming: first.naming,
      lineage: { mergeMethod: 'lorahub' },
    },
  });
}
