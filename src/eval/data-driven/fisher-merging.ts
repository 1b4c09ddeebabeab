// Fisher merging: Fᵢ = mean over task i's labeled validation examples of (∂ log p(yₙ|xₙ; θᵢ)/∂θᵢ)², one
// backward pass per example (the diagonal empirical Fisher from per-example gradients), then
// θ = Σ wᵢ(Fᵢ + floor)θᵢ / Σ wᵢ(Fᵢ + floor) elementwise. Each model reads its own head.
import * as tf from '@tensorflow/tfjs';
import { ForwardContext } from '../../model/forward-context.ts';
import { batchInputs } from '../../model/inference.ts';
import { crossEntropy } from '../../model/nn/functional.ts';
import type { ParamStore } from '../../model/params.ts';
import type { Dataset } from '../../model/train/dataset.ts';
import { type DataDrivenInputs, firstRows, storeLike } from './merge-inputs.ts';
import { checkAborted, disposeAll, type MethodOutput, type MethodRun } from './method-run.ts';

/** The diagonal empirical Fisher of one model on a labeled dataset, per tensor (kept; the caller disposes). */
export async function diagonalFisher(
  inputs: DataDrivenInputs,
  theta: ParamStore,
  examples: Dataset,
  onExample?: () => void,
  signal?: AbortSignal,
): Promise<Map<string, tf.Tensor>> {
  const model = inputs.runtime;
  const names = theta.names();
  const variables = names.map((name) => tf.variable(theta.get(name), true));
  const store = storeLike(theta, new Map(names.map((name, i) => [name, variables[i] as tf.Tensor])));
  const ctx = new ForwardContext(store);
  const sums = new Map(names.map((name) => [name, tf.zerosLike(theta.get(name))]));
  const count = examples.labels.length;
  try {
    for (let n = 0; n < count; n++) {
      checkAborted(signal);
      const { value, grads } = tf.variableGrads(() => {
        const { logits } = model.architecture.forward(
          ctx,
          batchInputs(examples.inputs, n, n + 1),
          model.config,
        );
        if (!logits) throw new Error('the model produced no logits (a CLIP model needs a classifier head)');
        return crossEntropy(logits, tf.tensor1d(examples.labels.subarray(n, n + 1), 'int32'));
      }, variables);
      value.dispose();
      names.forEach((name, i) => {
        const g = grads[variables[i].name];
        if (!g) return;
        const previous = sums.get(name)!;
        sums.set(
          name,
          tf.tidy(() => tf.add(previous, tf.square(g))),
        );
        previous.dispose();
        g.dispose();
      });
      onExample?.();
      if (n % 16 === 15) await new Promise((resolve) => setImmediate(resolve));
    }
    for (const [name, sum] of sums) {
      sums.set(
        name,
        tf.tidy(() => tf.div(sum, Math.max(count, 1))),
      );
      sum.dispose();
    }
    return sums;
  } finally {
    store.dispose(); // the variables
  }
}

/** Σ wᵢ(Fᵢ + floor)θᵢ / Σ wᵢ(Fᵢ + floor) for every tensor. */
export function fisherWeightedAverage(
  thetas: readonly ParamStore[],
  fishers: ReadonlyArray<Map<string, tf.Tensor>>,
  weights: readonly number[],
  floor: number,
): ParamStore {
  const tensors = new Map<string, tf.Tensor>();
  for (const name of thetas[0].names()) {
    tensors.set(
      name,
      tf.tidy(() => {
        let numerator: tf.Tensor = tf.zerosLike(thetas[0].get(name));
        let denominator: tf.Tensor = tf.zerosLike(thetas[0].get(name));
        thetas.forEach((theta, i) => {
          const f = tf.mul(tf.add(fishers[i].get(name)!, floor), weights[i]);
          numerator = tf.add(numerator, tf.mul(f, theta.get(name)));
          denominator = tf.add(denominator, f);
        });
        return tf.div(numerator, denominator);
      }),
    );
  }
  return storeLike(thetas[0], tensors);
}

export async function runFisherMerging(run: MethodRun): Promise<MethodOutput> {
  const { inputs, params } = run;
  const examples = run.tasks.map((task) => firstRows(task.validation, Number(params.examples)));
  const total = examples.reduce((s, e) => s + e.labels.length, 0);
  let done = 0;
  const fishers: Array<Map<string, tf.Tensor>> = [];
  try {
    for (let i = 0; i < inputs.dense.length; i++) {
      fishers.push(
        await diagonalFisher(
          inputs,
          inputs.dense[i],
          examples[i],
          () => run.progress(++done, total),
          run.signal,
        ),
      );
    }
    const weights = run.perModel.map((p) => Number(p.weight ?? 1));
    if (weights.every((w) => w === 0)) throw new Error('fisher: every model weight is 0');
    const store = fisherWeightedAverage(inputs.dense, fishers, weights, Number(params.fisher_floor));
    const fisherMass = fishers.map((f) => {
      let sum = 0;
      for (const t of f.values()) sum += tf.tidy(() => tf.sum(t).dataSync()[0]);
      return sum;
    });
    return {
      kind: 'model',
      store,
      report: {
        method: 'fisher',
        examples: examples.map((e) => e.labels.length),
        coefficients: weights,
        details: { fisherTrace: fisherMass, fisherFloor: Number(params.fisher_floor) },
      },
    };
  } finally {
    for (const f of fishers) disposeAll(f.values());
  }
}
