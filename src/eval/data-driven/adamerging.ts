// AdaMerging: θ(λ) = θ₀ + Σᵢ λᵢ,ₖ τᵢ,ₖ with one λ per task (task-wise) or per task and tensor k (layer-wise),
// λ learned with Adam by minimising Σₜ mean entropy of softmax(f(θ(λ), x)) over unlabeled validation inputs
// of task t, read with task t's head. dL/dλᵢ,ₖ = Σ_{W ∈ k} ⟨dL/dW, τᵢ,W⟩: one backward pass to the merged
// weights, then dot products with the task vectors.
import * as tf from '@tensorflow/tfjs';
import { ForwardContext } from '../../model/forward-context.ts';
import { batchInputs } from '../../model/inference.ts';
import type { ParamStore } from '../../model/params.ts';
import { deriveSeed, seededUniform, shuffled } from '../../model/random.ts';
import { type Dataset, selectRows } from '../../model/train/dataset.ts';
import { type DataDrivenInputs, headOverrides, sampledRows, storeLike } from './merge-inputs.ts';
import { checkAborted, disposeAll, type MethodOutput, type MethodRun } from './method-run.ts';

/** The coefficients: λ[i][k] for input i and group k (one group, or one per tensor). */
export interface Coefficients {
  groups: string[][];
  lambdas: number[][];
}

/** Task vectors τᵢ = θᵢ − θ₀ for every tensor (kept; the caller disposes them). */
export function taskVectors(inputs: DataDrivenInputs): Array<Map<string, tf.Tensor>> {
  const base = inputs.base!;
  return inputs.dense.map((theta) => {
    const tau = new Map<string, tf.Tensor>();
    for (const name of base.names()) tau.set(name, tf.sub(theta.get(name), base.get(name)));
    return tau;
  });
}

/** θ₀ + Σ λᵢ,ₖ τᵢ for every tensor, as a new store. */
export function mergedStore(
  base: ParamStore,
  tau: ReadonlyArray<Map<string, tf.Tensor>>,
  coefficients: Coefficients,
): ParamStore {
  const tensors = new Map<string, tf.Tensor>();
  coefficients.groups.forEach((names, k) => {
    for (const name of names) {
      tensors.set(
        name,
        tf.tidy(() => {
          let merged = base.get(name);
          tau.forEach((vectors, i) => {
            merged = tf.add(merged, tf.mul(vectors.get(name)!, coefficients.lambdas[i][k]));
          });
          return merged;
        }),
      );
    }
  });
  return storeLike(base, tensors);
}

/** Mean prediction entropy −Σ p log p of a batch of logits. */
export function meanEntropy(logits: tf.Tensor2D): tf.Scalar {
  return tf.tidy(() => {
    const logProbs = tf.logSoftmax(logits);
    return tf.neg(tf.mean(tf.sum(tf.mul(tf.exp(logProbs), logProbs), -1))) as tf.Scalar;
  });
}

/**
 * The entropy objective at λ and its gradient dL/dλ (first order through the merged weights), for one batch
 * per task. Exported for the finite-difference test.
 */
export function entropyAndGradient(
  inputs: DataDrivenInputs,
  tau: ReadonlyArray<Map<string, tf.Tensor>>,
  coefficients: Coefficients,
  batches: readonly Dataset[],
): { loss: number; gradient: number[][] } {
  const merged = mergedStore(inputs.base!, tau, coefficients);
  const variables = new Map<string, tf.Variable>();
  try {
    for (const name of merged.names()) {
      const variable = tf.variable(merged.get(name), true);
      variables.set(name, variable);
      merged.replace(name, variable);
    }
    const model = inputs.runtime;
    const { value, grads } = tf.variableGrads(() => {
      let total = tf.scalar(0);
      batches.forEach((batch, t) => {
        const ctx = new ForwardContext(merged, new Map(), headOverrides(inputs, t));
        const { logits } = model.architecture.forward(
          ctx,
          batchInputs(batch.inputs, 0, batch.labels.length),
          model.config,
        );
        if (!logits) throw new Error('the model produced no logits (a CLIP model needs a classifier head)');
        total = tf.add(total, meanEntropy(logits));
      });
      return total as tf.Scalar;
    }, [...variables.values()]);
    const byName = new Map<string, tf.Tensor>();
    for (const [name, variable] of variables) {
      const g = grads[variable.name];
      if (g) byName.set(name, g);
    }
    const gradient = tf.tidy(() =>
      tau.map((vectors) =>
        coefficients.groups.map((names) => {
          let sum = tf.scalar(0);
          for (const name of names) {
            const g = byName.get(name);
            if (g) sum = tf.add(sum, tf.sum(tf.mul(g, vectors.get(name)!)));
          }
          return sum;
        }),
      ),
    );
    const flat = tf.stack(gradient.flat());
    const values = Array.from(flat.dataSync());
    const loss = value.dataSync()[0];
    disposeAll([flat, value, ...gradient.flat(), ...byName.values()]);
    const groupCount = coefficients.groups.length;
    return {
      loss,
      gradient: tau.map((_, i) => values.slice(i * groupCount, (i + 1) * groupCount)),
    };
  } finally {
    merged.dispose(); // disposes the variables it holds
  }
}

/** The coefficient groups: every tensor together (task-wise) or one group per tensor (layer-wise). */
export function coefficientGroups(inputs: DataDrivenInputs, granularity: string): string[][] {
  const names = inputs.base!.names();
  return granularity === 'task' ? [names] : names.map((name) => [name]);
}

export async function runAdamerging(run: MethodRun): Promise<MethodOutput> {
  const { inputs, params } = run;
  const steps = Number(params.steps);
  const batchSize = Number(params.batch_size);
  const learningRate = Number(params.learning_rate);
  const pools = run.tasks.map((task, t) =>
    sampledRows(task.validation, Number(params.examples), deriveSeed(run.seed, `adamerging-examples-${t}`)),
  );
  const groups = coefficientGroups(inputs, String(params.granularity));
  const n = inputs.dense.length;
  const coefficients: Coefficients = {
    groups,
    lambdas: Array.from({ length: n }, () => new Array<number>(groups.length).fill(Number(params.init))),
  };
  const tau = taskVectors(inputs);
  const orders = pools.map((pool, t) => ({
    random: seededUniform(deriveSeed(run.seed, `adamerging-batches-${t}`)),
    order: [] as number[],
    size: pool.labels.length,
  }));
  const nextBatch = (t: number): Dataset => {
    const o = orders[t];
    const rows: number[] = [];
    while (rows.length < Math.min(batchSize, o.size)) {
      if (o.order.length === 0) o.order = shuffled(o.size, o.random);
      rows.push(o.order.pop()!);
    }
    return selectRows(pools[t], rows);
  };
  // Adam on λ (β₁ 0.9, β₂ 0.999, ε 1e-8), as the paper.
  const m = coefficients.lambdas.map((row) => row.map(() => 0));
  const v = coefficients.lambdas.map((row) => row.map(() => 0));
  const objective: Array<{ step: number; value: number }> = [];
  try {
    for (let step = 1; step <= steps; step++) {
      checkAborted(run.signal);
      const { loss, gradient } = entropyAndGradient(
        inputs,
        tau,
        coefficients,
        run.tasks.map((_, t) => nextBatch(t)),
      );
      objective.push({ step, value: loss });
      for (let i = 0; i < n; i++) {
        for (let k = 0; k < groups.length; k++) {
          const g = gradient[i][k];
          m[i][k] = 0.9 * m[i][k] + 0.1 * g;
          v[i][k] = 0.999 * v[i][k] + 0.001 * g * g;
          const mHat = m[i][k] / (1 - 0.9 ** step);
          const vHat = v[i][k] / (1 - 0.999 ** step);
          coefficients.lambdas[i][k] -= (learningRate * mHat) / (Math.sqrt(vHat) + 1e-8);
        }
      }
      run.progress(step, steps);
      await new Promise((resolve) => setImmediate(resolve)); // let cancellation and progress through
    }
    const store = mergedStore(inputs.base!, tau, coefficients);
    const report = {
      method: 'adamerging',
      examples: pools.map((p) => p.labels.length),
      coefficients: coefficients.lambdas.map((row) => row.reduce((s, x) => s + x, 0) / row.length),
      layerCoefficients:
        groups.length > 1
          ? groups.map((names, k) => ({
              tensor: names[0],
              lambdas: coefficients.lambdas.map((row) => row[k]),
            }))
          : undefined,
      objective,
      details: { granularity: String(params.granularity), init: Number(params.init), steps },
    };
    return { kind: 'model', store, report };
  } finally {
    for (const vectors of tau) disposeAll(vectors.values());
  }
}
