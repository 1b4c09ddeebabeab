/** Accuracy of predictions against labels. */
export function accuracy(predictions: ArrayLike<number>, labels: ArrayLike<number>): number {
  if (predictions.length !== labels.length) throw new Error('predictions and labels differ in length');
  let correct = 0;
  for (let i = 0; i < labels.length; i++) if (predictions[i] === labels[i]) correct += 1;
  return labels.length === 0 ? 0 : correct / labels.length;
}

/**
 * The paper's normalized accuracy per task: merged accuracy ÷ the individually fine-tuned model's accuracy on that
 * task (same fine-tuning mode), and their mean.
 */
export function normalizedAccuracy(
  merged: Record<string, number>,
  individual: Record<string, number>,
): { perTask: Record<string, number>; average: number } {
  const perTask: Record<string, number> = {};
  for (const [task, value] of Object.entries(merged)) {
    const reference = individual[task];
    if (reference === undefined) throw new Error(`no individual accuracy for task ${task}`);
    if (reference === 0)
      throw new Error(`individual accuracy of task ${task} is 0: normalized accuracy undefined`);
    perTask[task] = value / reference;
  }
  const values = Object.values(perTask);
  return { perTask, average: values.length ? values.reduce((a, b) => a + b, 0) / values.length : 0 };
}

/** Task-vector analysis: pairwise cosine similarity, L2 norms and the sign-conflict rate (pairs of non-zero entries). */
export function taskVectorAnalysis(vectors: Float32Array[]): {
  norms: number[];
  cosine: number[][];
  signConflictRate: number[][];
} {
  const norms = vectors.map((v) => Math.sqrt(dot(v, v)));
  const cosine = vectors.map((a, i) =>
    vectors.map((b, j) => (norms[i] && norms[j] ? dot(a, b) / (norms[i] * norms[j]) : 0)),
  );
  const signConflictRate = vectors.map((a) =>
    vectors.map((b) => {
      if (a.length !== b.length) throw new Error('task vectors differ in length');
      let both = 0;
      let conflicts = 0;
      for (let k = 0; k < a.length; k++) {
        if (a[k] === 0 || b[k] === 0) continue;
        both += 1;
        if (a[k] > 0 !== b[k] > 0) conflicts += 1;
      }
      return both ? conflicts / both : 0;
    }),
  );
  return { norms, cosine, signConflictRate };
}

function dot(a: Float32Array, b: Float32Array): number {
  if (a.length !== b.length) throw new Error('task vectors differ in length');
  let sum = 0; // float64 accumulation: task vectors have millions of entries
  for (let k = 0; k < a.length; k++) sum += a[k] * b[k];
  return sum;
}

/** Fraction of examples where two prediction lists disagree. */
export function disagreement(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) throw new Error('prediction lists differ in length');
  let differ = 0;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) differ += 1;
  return a.length === 0 ? 0 : differ / a.length;
}

/**
 * Weight disentanglement error of a task pair over a λ grid: ξ(λ₁, λ₂) = Σ_t E_{x∈D_t}[pred(θ₀ + λ_t τ_t; x) ≠
 * pred(θ₀ + λ₁τ₁ + λ₂τ₂; x)]. `predict(λ₁, λ₂, task)` returns the predictions on task t's inputs of the model
 * θ₀ + λ₁τ₁ + λ₂τ₂ (the caller builds it: merged weights or scaled adapters).
 */
export async function disentanglementError(
  grid: number[],
  predict: (lambda1: number, lambda2: number, task: 0 | 1) => Promise<ArrayLike<number>>,
): Promise<number[][]> {
  const single: Array<Map<number, ArrayLike<number>>> = [new Map(), new Map()];
  for (const lambda of grid) {
    single[0].set(lambda, await predict(lambda, 0, 0));
    single[1].set(lambda, await predict(0, lambda, 1));
  }
  const errors: number[][] = [];
  for (const lambda1 of grid) {
    const row: number[] = [];
    for (const lambda2 of grid) {
      const both0 = await predict(lambda1, lambda2, 0);
      const both1 = await predict(lambda1, lambda2, 1);
      row.push(disagreement(single[0].get(lambda1)!, both0) + disagreement(single[1].get(lambda2)!, both1));
    }
    errors.push(row);
  }
  return errors;
}

/** numpy.linspace: `count` evenly spaced values from start to stop inclusive (the paper's λ grid: −2, 2, 21). */
export function linspace(start: number, stop: number, count: number): number[] {
  if (count === 1) return [start];
  return Array.from({ length: count }, (_, i) => start + ((stop - start) * i) / (count - 1));
}
