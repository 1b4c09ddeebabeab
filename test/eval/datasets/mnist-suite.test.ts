// The MNIST study suite: disjoint splits and pools, determinism, balance, labels and pixels, typed size errors.
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import { describe, it } from 'node:test';
import { pretrainingPoolIndices, sourceDigits, studyPools } from '../../../src/eval/datasets/mnist-pools.ts';
import {
  buildStudyTask,
  QUICK_STUDY_TASKS,
  STUDY_TASKS,
  StudySplitSizeError,
  selectStudySources,
  studySplitLimits,
  UnknownStudyTaskError,
} from '../../../src/eval/datasets/mnist-suite.ts';

const SMALL = { train: 60, validation: 20, test: 40 };

describe('mnist study suite', () => {
  it('has at least 8 tasks (6+ input domains, 2+ label tasks) and a mixed quick subset', () => {
    const names = STUDY_TASKS.map((t) => t.name);
    assert.equal(new Set(names).size, names.length);
    assert.ok(STUDY_TASKS.filter((t) => t.kind === 'domain').length >= 6);
    assert.ok(STUDY_TASKS.filter((t) => t.kind === 'label').length >= 2);
    assert.equal(QUICK_STUDY_TASKS.length, 4);
    const quickKinds = new Set(QUICK_STUDY_TASKS.map((n) => STUDY_TASKS.find((t) => t.name === n)!.kind));
    assert.deepEqual([...quickKinds].sort(), ['domain', 'label']);
  });

  it('reads the package digits in digit-major order', () => {
    const mnist = createRequire(import.meta.url)('mnist') as Record<
      number,
      { raw: number[]; length: number }
    >;
    const { pixels, digits } = sourceDigits();
    assert.equal(digits.length, 10000);
    const firstThree = mnist[0].length + mnist[1].length + mnist[2].length;
    assert.equal(digits[firstThree], 3);
    assert.deepEqual(
      pixels.subarray(firstThree * 784, firstThree * 784 + 784),
      Float32Array.from(mnist[3].raw.slice(0, 784)),
    );
  });

  it('partitions the 10,000 images into disjoint pools, the pretraining pool apart from all', () => {
    const seen = new Map<number, string>();
    for (const [pool, byDigit] of studyPools()) {
      byDigit.forEach((members, digit) => {
        for (const index of members) {
          assert.ok(!seen.has(index), `image ${index} in ${seen.get(index)} and ${pool}`);
          assert.equal(sourceDigits().digits[index], digit);
          seen.set(index, pool);
        }
      });
    }
    assert.equal(seen.size, 10000);
    const pretraining = new Set(pretrainingPoolIndices());
    assert.ok(pretraining.size >= 1900);
    // Every split of every task at its largest size and a few seeds stays out of the pretraining pool.
    for (const task of STUDY_TASKS) {
      for (const seed of [0, 1, 12345]) {
        const sources = selectStudySources(task.name, studySplitLimits(task.name), seed);
        for (const [split, indices] of Object.entries(sources)) {
          for (const index of indices)
            assert.ok(!pretraining.has(index), `${task.name} ${split} has ${index}`);
        }
      }
    }
  });

  it('never shares a source image between the splits of a task, across tasks and seeds', () => {
    const owner = new Map<number, string>();
    for (const task of STUDY_TASKS) {
      for (const seed of [0, 3]) {
        const sources = selectStudySources(task.name, { train: 400, validation: 100, test: 200 }, seed);
        for (const [split, indices] of Object.entries(sources)) {
          assert.equal(new Set(indices).size, indices.length, `${task.name} ${split} repeats an image`);
          for (const index of indices) {
            const previous = owner.get(index);
            assert.ok(
              previous === undefined || previous === split,
              `image ${index}: ${previous} and ${split}`,
            );
            owner.set(index, split);
          }
        }
      }
    }
  });

  it('is deterministic: the same seed gives identical bytes, another seed other images', () => {
    for (const name of ['elastic', 'parity']) {
      const a = buildStudyTask(name, SMALL, 5);
      const b = buildStudyTask(name, SMALL, 5);
      for (const split of ['train', 'validation', 'test'] as const) {
        const [x, y] = [a[split].inputs.get('pixel_values')!, b[split].inputs.get('pixel_values')!];
        assert.deepEqual(
          Buffer.from((x.data as Float32Array).buffer),
          Buffer.from((y.data as Float32Array).buffer),
        );
        assert.deepEqual(a[split].labels, b[split].labels);
      }
      const other = selectStudySources(name, SMALL, 6);
      assert.notDeepEqual(other.train, selectStudySources(name, SMALL, 5).train);
    }
  });

  it('balances classes, labels each image by its digit and fills the metadata', () => {
    for (const task of STUDY_TASKS) {
      const sizes = { train: 50, validation: 10, test: 30 };
      const built = buildStudyTask(task.name, sizes, 0);
      const sources = selectStudySources(task.name, sizes, 0);
      for (const split of ['train', 'validation', 'test'] as const) {
        const dataset = built[split];
        assert.equal(dataset.task, task.name);
        assert.equal(dataset.split, split);
        assert.deepEqual(dataset.classNames, task.classNames);
        assert.deepEqual(dataset.inputs.get('pixel_values')!.shape, [sizes[split], 1, 28, 28]);
        const counts = task.classNames.map((_, c) => dataset.labels.filter((l) => l === c).length);
        assert.ok(Math.max(...counts) - Math.min(...counts) <= 1, `${task.name} ${split}: ${counts}`);
        sources[split].forEach((source, row) => {
          const digit = sourceDigits().digits[source];
          const expected =
            task.name === 'parity' ? digit % 2 : task.name === 'magnitude' ? +(digit >= 5) : digit;
          assert.equal(dataset.labels[row], expected);
        });
      }
    }
  });

  it('stores each task transform of the source pixels, scaled to [−1, 1]', () => {
    const { pixels } = sourceDigits();
    const check = (name: string, expected: (raw: Float32Array, x: number, y: number) => number) => {
      const sizes = { train: 10, validation: 10, test: 10 };
      const dataset = buildStudyTask(name, sizes, 2).test;
      const source = selectStudySources(name, sizes, 2).test[3];
      const raw = pixels.subarray(source * 784, source * 784 + 784);
      const stored = (dataset.inputs.get('pixel_values')!.data as Float32Array).subarray(3 * 784, 4 * 784);
      for (let y = 0; y < 28; y++) {
        for (let x = 0; x < 28; x++) {
          assert.ok(
            Math.abs(stored[y * 28 + x] - (expected(raw, x, y) - 0.5) / 0.5) < 1e-6,
            `${name} (${x}, ${y})`,
          );
        }
      }
    };
    check('parity', (raw, x, y) => raw[y * 28 + x]);
    check('inverted', (raw, x, y) => 1 - raw[y * 28 + x]);
    check('flipped', (raw, x, y) => raw[y * 28 + 27 - x]);
    check('shifted', (raw, x, y) => (x >= 4 && y < 24 ? raw[(y + 4) * 28 + x - 4] : 0));
  });

  it('refuses unknown tasks and splits beyond the pool with typed errors naming the limit', () => {
    assert.throws(() => buildStudyTask('mnist-rotated', SMALL), UnknownStudyTaskError);
    const limits = studySplitLimits('rotated');
    assert.ok(limits.train > 4000 && limits.validation > 800 && limits.test > 1600);
    assert.throws(
      () => buildStudyTask('rotated', { ...SMALL, test: limits.test + 1 }),
      (error: unknown) =>
        error instanceof StudySplitSizeError &&
        error.split === 'test' &&
        error.limit === limits.test &&
        error.message.includes(String(limits.test)),
    );
    assert.throws(() => buildStudyTask('parity', { ...SMALL, train: -1 }), StudySplitSizeError);
    assert.throws(() => buildStudyTask('parity', { ...SMALL, train: 2.5 }), StudySplitSizeError);
    // The limit itself is allowed.
    assert.equal(selectStudySources('magnitude', studySplitLimits('magnitude')).test.length, limits.test);
  });
});
