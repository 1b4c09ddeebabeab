// STAND-IN (branch h9study) for h9suite's task suite: the agreed interface over a few MNIST-derived tasks,
// so that `lorafuse study` can be built and tested before the real suite lands. h9suite's file replaces this one.
import { createRequire } from 'node:module';
import type { Dataset } from '../../model/train/dataset.ts';
import { seededUniform, shuffled } from '../../model/random.ts';

export interface StudyTask {
  name: string;
  kind: 'domain' | 'label';
  description: string;
  classNames: string[];
}

export interface StudySplitSizes {
  train: number;
  validation: number;
  test: number;
}

const DIGITS = ['0', '1', '2', '3', '4', '5', '6', '7', '8', '9'];

interface TaskRule extends StudyTask {
  label: (digit: number) => number;
  transform: (pixels: Float32Array) => Float32Array;
}

const identity = (pixels: Float32Array) => pixels;

const RULES: TaskRule[] = [
  {
    name: 'digits',
    kind: 'domain',
    description: 'the digit, as written',
    classNames: DIGITS,
    label: (d) => d,
    transform: identity,
  },
  {
    name: 'inverted',
    kind: 'domain',
    description: 'the digit, black on white',
    classNames: DIGITS,
    label: (d) => d,
    transform: (pixels) => pixels.map((v) => -v),
  },
  {
    name: 'parity',
    kind: 'label',
    description: 'even or odd',
    classNames: ['even', 'odd'],
    label: (d) => d % 2,
    transform: identity,
  },
  {
    name: 'magnitude',
    kind: 'label',
    description: 'below 5 or not',
    classNames: ['0-4', '5-9'],
    label: (d) => (d < 5 ? 0 : 1),
    transform: identity,
  },
];

export const STUDY_TASKS: readonly StudyTask[] = RULES.map(({ name, kind, description, classNames }) => ({
  name,
  kind,
  description,
  classNames,
}));

export const QUICK_STUDY_TASKS: readonly string[] = ['digits', 'inverted', 'parity', 'magnitude'];

interface MnistDigit {
  length: number;
  raw: number[];
}

/** Train, validation and test of one task from disjoint images (a seeded shuffle of all 10,000, cut in three). */
export function buildStudyTask(
  name: string,
  sizes: StudySplitSizes,
  seed = 0,
): { train: Dataset; validation: Dataset; test: Dataset } {
  const rule = RULES.find((r) => r.name === name);
  if (!rule) throw new Error(`unknown study task ${name}; known: ${RULES.map((r) => r.name).join(', ')}`);
  const mnist = createRequire(import.meta.url)('mnist') as Record<number, MnistDigit>;
  const all: Array<[number, number]> = [];
  for (let digit = 0; digit < 10; digit++) for (let i = 0; i < mnist[digit].length; i++) all.push([digit, i]);
  const need = sizes.train + sizes.validation + sizes.test;
  if (need > all.length) throw new Error(`${need} examples asked, ${all.length} exist`);
  const order = shuffled(all.length, seededUniform(seed + 7919));
  const build = (split: 'train' | 'validation' | 'test', from: number, count: number): Dataset => {
    const pixels = new Float32Array(count * 784);
    const labels = new Int32Array(count);
    for (let row = 0; row < count; row++) {
      const [digit, index] = all[order[from + row]];
      const raw = Float32Array.from(
        mnist[digit].raw.slice(index * 784, index * 784 + 784),
        (v) => (v - 0.5) / 0.5,
      );
      pixels.set(rule.transform(raw), row * 784);
      labels[row] = rule.label(digit);
    }
    return {
      inputs: new Map([['pixel_values', { dtype: 'F32', shape: [count, 1, 28, 28], data: pixels }]]),
      labels,
      task: name,
      split,
      classNames: [...rule.classNames],
    };
  };
  return {
    train: build('train', 0, sizes.train),
    validation: build('validation', sizes.train, sizes.validation),
    test: build('test', sizes.train + sizes.validation, sizes.test),
  };
}
