// RegMean: for every linear module with recorded inputs, W = (Σ G̃ᵢ)⁻¹ Σ G̃ᵢ Wᵢ in the runtime's [in, out]
// layout, Gᵢ = XᵢᵀXᵢ / rowsᵢ the Gram matrix of the module's inputs under model i on task i's validation
// inputs (normalised per task so each task weighs the same however many rows it gave), G̃ = α·G +
// (1 − α)·diag(G). Everything else (biases, norms, embeddings, modules never reached) is averaged.
import * as tf from '@tensorflow/tfjs';
import { ForwardContext } from '../../model/forward-context.ts';
import { batchInputs } from '../../model/inference.ts';
import type { ParamStore } from '../../model/params.ts';
import type { Dataset } from '../../model/train/dataset.ts';
import { type DataDrivenInputs, firstRows, storeLike } from './merge-inputs.ts';
import { checkAborted, disposeAll, type MethodOutput, type MethodRun } from './method-run.ts';

/** A forward context that also sums XᵀX of every linear module's input. */
class GramRecorder extends ForwardContext {
  readonly grams = new Map<string, { gram: tf.Tensor2D; rows: number }>();

  override linear(module: string, x: tf.Tensor): tf.Tensor {
    const inner = x.shape[x.rank - 1];
    const flat = (x.rank === 2 ? x : tf.reshape(x, [-1, inner])) as tf.Tensor2D;
    const batchGram = tf.matMul(flat, flat, true, false);
    const entry = this.grams.get(module);
    // Kept out of the caller's tidy: the sums outlive the forward pass.
    const gram = tf.keep(entry ? tf.add(entry.gram, batchGram) : batchGram) as tf.Tensor2D;
    entry?.gram.dispose();
    this.grams.set(module, { gram, rows: (entry?.rows ?? 0) + flat.shape[0] });
    return super.linear(module, x);
  }
}

/** Gram matrices Gᵢ = XᵀX / rows of every linear module reached by model `theta` on `examples`, as float64 host arrays. */
export async function inputGrams(
  inputs: DataDrivenInputs,
  theta: ParamStore,
  examples: Dataset,
  signal?: AbortSignal,
  batchSize = 64,
): Promise<Map<string, { size: number; gram: Float64Array }>> {
  const model = inputs.runtime;
  const recorder = new GramRecorder(theta);
  const count = examples.labels.length;
  try {
    for (let start = 0; start < count; start += batchSize) {
      checkAborted(signal);
      const end = Math.min(count, start + batchSize);
      tf.tidy(() => {
        model.architecture.forward(recorder, batchInputs(examples.inputs, start, end), model.config);
      });
    }
    const out = new Map<string, { size: number; gram: Float64Array }>();
    for (const [module, { gram, rows }] of recorder.grams) {
      const data = Float64Array.from(await gram.data(), (v) => v / rows);
      out.set(module, { size: gram.shape[0], gram: data });
    }
    return out;
  } finally {
    disposeAll([...recorder.grams.values()].map((e) => e.gram));
  }
}

/**
 * Solves S·X = R for symmetric positive semi-definite S [n×n] and R [n×m] (float64, row-major) by Cholesky.
 * Directions no task's inputs ever reach (a zero diagonal) are left out of the solve; `fallback` gives their rows.
 */
export function solveGram(
  s: Float64Array,
  r: Float64Array,
  n: number,
  m: number,
  fallback: (row: number, col: number) => number,
): Float64Array {
  let maxDiagonal = 0;
  for (let i = 0; i < n; i++) maxDiagonal = Math.max(maxDiagonal, s[i * n + i]);
  const active = Array.from({ length: n }, (_, i) => i).filter((i) => s[i * n + i] > maxDiagonal * 1e-12);
  const k = active.length;
  const out = new Float64Array(n * m);
  for (let i = 0; i < n; i++) for (let j = 0; j < m; j++) out[i * m + j] = fallback(i, j);
  if (k === 0) return out;
  // Cholesky of the active block, with growing jitter if rounding makes it indefinite.
  for (let jitter = 0; ; jitter = jitter === 0 ? 1e-12 : jitter * 100) {
    const l = new Float64Array(k * k);
    let ok = true;
    for (let i = 0; i < k && ok; i++) {
      for (let j = 0; j <= i; j++) {
        let sum = s[active[i] * n + active[j]] + (i === j ? jitter * maxDiagonal : 0);
        for (let p = 0; p < j; p++) sum -= l[i * k + p] * l[j * k + p];
        if (i === j) {
          if (sum <= 0) {
            ok = false;
            break;
          }
          l[i * k + i] = Math.sqrt(sum);
        } else l[i * k + j] = sum / l[j * k + j];
      }
    }
    if (!ok) {
      if (jitter > 1e-2) throw new Error('regmean: the Gram matrix sum is not positive definite');
      continue;
    }
    for (let col = 0; col < m; col++) {
      const y = new Float64Array(k);
      for (let i = 0; i < k; i++) {
        let sum = r[active[i] * m + col];
        for (let p = 0; p < i; p++) sum -= l[i * k + p] * y[p];
        y[i] = sum / l[i * k + i];
      }
      for (let i = k - 1; i >= 0; i--) {
        let sum = y[i];
        for (let p = i + 1; p < k; p++) sum -= l[p * k + i] * y[p];
        y[i] = sum / l[i * k + i];
      }
      for (let i = 0; i < k; i++) out[active[i] * m + col] = y[i];
    }
    return out;
  }
}

/** (Σ G̃ᵢ)⁻¹ Σ G̃ᵢ Kᵢ for kernels Kᵢ [in, out] (float32 row-major) and Grams Gᵢ [in, in]. */
export function regmeanKernel(
  grams: readonly Float64Array[],
  kernels: readonly Float32Array[],
  inFeatures: number,
  outFeatures: number,
  alpha: number,
): Float64Array {
  const n = inFeatures;
  const m = outFeatures;
  const s = new Float64Array(n * n);
  const r = new Float64Array(n * m);
  grams.forEach((g, t) => {
    const kernel = kernels[t];
    for (let i = 0; i < n; i++) {
      for (let j = 0; j < n; j++) {
        const scaled = i === j ? g[i * n + j] : alpha * g[i * n + j];
        if (scaled === 0) continue;
        s[i * n + j] += scaled;
        for (let c = 0; c < m; c++) r[i * m + c] += scaled * kernel[j * m + c];
      }
    }
  });
  return solveGram(
    s,
    r,
    n,
    m,
    (row, col) => kernels.reduce((acc, k) => acc + k[row * m + col], 0) / kernels.length,
  );
}

export async function runRegmean(run: MethodRun): Promise<MethodOutput> {
  const { inputs, params } = run;
  const alpha = Number(params.alpha);
  const examples = run.tasks.map((task) => firstRows(task.validation, Number(params.examples)));
  const grams: Array<Map<string, { size: number; gram: Float64Array }>> = [];
  for (let i = 0; i < inputs.dense.length; i++) {
    grams.push(await inputGrams(inputs, inputs.dense[i], examples[i], run.signal));
    run.progress(i + 1, inputs.dense.length + 1);
  }
  const thetas = inputs.dense;
  const reference = thetas[0];
  const linearModules = new Set(inputs.runtime.architecture.linearModules(inputs.runtime.config));
  const solved: string[] = [];
  const tensors = new Map<string, tf.Tensor>();
  for (const name of reference.names()) {
    const module = name.endsWith('.weight') ? name.slice(0, -'.weight'.length) : '';
    const kernel = reference.get(name);
    const closedForm =
      linearModules.has(module) &&
      kernel.rank === 2 &&
      grams.every((g) => g.get(module)?.size === kernel.shape[0]);
    if (!closedForm) {
      tensors.set(
        name,
        tf.tidy(() => tf.div(tf.addN(thetas.map((t) => t.get(name))), thetas.length)),
      );
      continue;
    }
    const [inFeatures, outFeatures] = kernel.shape;
    const kernels = await Promise.all(thetas.map(async (t) => (await t.get(name).data()) as Float32Array));
    const merged = regmeanKernel(
      grams.map((g) => g.get(module)!.gram),
      kernels,
      inFeatures,
      outFeatures,
      alpha,
    );
    tensors.set(name, tf.tensor2d(Float32Array.from(merged), [inFeatures, outFeatures]));
    solved.push(module);
  }
  run.progress(inputs.dense.length + 1, inputs.dense.length + 1);
  return {
    kind: 'model',
    store: storeLike(reference, tensors),
    report: {
      method: 'regmean',
      examples: examples.map((e) => e.labels.length),
      details: { alpha, closedFormModules: solved },
    },
  };
}
