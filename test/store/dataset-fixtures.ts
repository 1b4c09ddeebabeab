// Dataset files written at test time: a learnable task for the tiny MLP fixture (48 pixels as
// [N,3,4,4], 4 classes; the label is the argmax of a fixed random linear map), or any tensors
// and metadata a validation test needs.
import { seededUniform, writeSafetensors } from '../../src/tensors/index.ts';
import type { DType, TypedArray } from '../../src/tensors/index.ts';

export const MLP_CLASSES = ['north', 'east', 'south', 'west'];

export function mlpTask(n: number, seed = 11): { pixels: Float32Array; labels: BigInt64Array } {
  const next = seededUniform(seed);
  const map = Float32Array.from({ length: 48 * 4 }, () => next() * 2 - 1);
  const pixels = Float32Array.from({ length: n * 48 }, () => next() * 2 - 1);
  const labels = new BigInt64Array(n);
  for (let i = 0; i < n; i++) {
    let best = 0;
    let bestScore = Number.NEGATIVE_INFINITY;
    for (let c = 0; c < 4; c++) {
      let score = 0;
      for (let p = 0; p < 48; p++) score += pixels[i * 48 + p] * map[p * 4 + c];
      if (score > bestScore) [best, bestScore] = [c, score];
    }
    labels[i] = BigInt(best);
  }
  return { pixels, labels };
}

export interface DatasetTensor {
  name: string;
  dtype: DType;
  shape: number[];
  data: TypedArray;
}

export function mlpDatasetTensors(n: number, seed?: number): DatasetTensor[] {
  const { pixels, labels } = mlpTask(n, seed);
  return [
    { name: 'pixel_values', dtype: 'F32', shape: [n, 3, 4, 4], data: pixels },
    { name: 'labels', dtype: 'I64', shape: [n], data: labels },
  ];
}

export function datasetMetadata(overrides: Record<string, string | undefined> = {}): Record<string, string> {
  const metadata: Record<string, string | undefined> = {
    task: 'compass',
    split: 'train',
    class_names: JSON.stringify(MLP_CLASSES),
    ...overrides,
  };
  return Object.fromEntries(
    Object.entries(metadata).filter((entry): entry is [string, string] => entry[1] !== undefined),
  );
}

/** Writes dataset.safetensors (by default the MLP task with n examples) and returns its path. */
export async function writeDatasetFile(
  filePath: string,
  options: { n?: number; seed?: number; tensors?: DatasetTensor[]; metadata?: Record<string, string> } = {},
): Promise<string> {
  const tensors = options.tensors ?? mlpDatasetTensors(options.n ?? 64, options.seed);
  await writeSafetensors(filePath, tensors, options.metadata ?? datasetMetadata());
  return filePath;
}
