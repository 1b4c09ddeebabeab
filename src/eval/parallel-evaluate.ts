import type { EvaluationResult } from '../model/evaluate-model.ts';
import { RuntimePool } from '../model/parallel/runtime-pool.ts';
import { type Dataset, selectRows } from '../model/train/dataset.ts';

/**
 * Evaluates a model (with an optional adapter) over a dataset split across `workers` threads, one wasm runtime
 * each, and combines the shards: the same numbers as evaluateModel in one runtime.
 */
export async function evaluateParallel(options: {
  modelDir: string;
  adapterDir?: string;
  extraWeights?: string[];
  dataset: Dataset;
  workers: number;
  backend?: string;
  /** How long the worker threads stay warm for the next job (config.runtime.runtimeIdleMs); default 60 s. */
  runtimeIdleMs?: number;
}): Promise<EvaluationResult> {
  const n = options.dataset.labels.length;
  const parts = Math.max(1, Math.min(options.workers, n));
  const bounds = Array.from({ length: parts + 1 }, (_, i) => Math.round((i * n) / parts));
  const shards = Array.from({ length: parts }, (_, i) => {
    const rows = Array.from({ length: bounds[i + 1] - bounds[i] }, (_, r) => bounds[i] + r);
    const shard = selectRows(options.dataset, rows);
    return { inputs: shard.inputs, labels: shard.labels };
  });
  const pool = await RuntimePool.start(
    parts,
    {
      type: 'init',
      backend: options.backend ?? 'wasm',
      modelDir: options.modelDir,
      adapterDir: options.adapterDir,
      extraWeights: options.extraWeights,
    },
    options.runtimeIdleMs,
  );
  try {
    const results = await pool.evaluate(shards);
    const predictions = new Int32Array(n);
    let lossSum = 0;
    let correct = 0;
    results.forEach((result, i) => {
      predictions.set(result.predictions, bounds[i]);
      lossSum += result.lossSum;
    });
    for (let i = 0; i < n; i++) if (predictions[i] === options.dataset.labels[i]) correct += 1;
    return { examples: n, accuracy: n ? correct / n : 0, loss: n ? lossSum / n : 0, predictions };
  } finally {
    await pool.close();
  }
}
