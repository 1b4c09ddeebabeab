import assert from 'node:assert/strict';
import path from 'node:path';
import { before, describe, it } from 'node:test';
import { buildMnistDataset } from '../../src/eval/datasets/mnist.ts';
import { evaluateParallel } from '../../src/eval/parallel-evaluate.ts';
import { initBackend } from '../../src/model/backend.ts';
import { evaluateModel } from '../../src/model/evaluate-model.ts';
import { contextFor } from '../../src/model/inference.ts';
import { loadModel } from '../../src/model/load-model.ts';
import { loadAdapter } from '../../src/model/lora/peft-adapter.ts';
import { endIdleRuntimes, idleRuntimeCount } from '../../src/model/parallel/runtime-pool.ts';
import { ConfigError, loadRuntimeSettings } from '../../src/config.ts';
import { selectRows } from '../../src/model/train/dataset.ts';

const VIT = path.join(import.meta.dirname, '..', 'fixtures', 'model', 'vit');

/** 40 real digits, cut to the fixture ViT's 3×8×8 input: a model-shaped dataset with real content. */
function fixtureDigits() {
  const mnist = buildMnistDataset({ task: 'parity', split: 'test', perDigit: 4 });
  const pixels = mnist.inputs.get('pixel_values')!;
  const n = mnist.labels.length;
  const data = new Float32Array(n * 3 * 64);
  for (let i = 0; i < n; i++) {
    for (let c = 0; c < 3; c++) {
      for (let y = 0; y < 8; y++) {
        for (let x = 0; x < 8; x++) {
          data[((i * 3 + c) * 8 + y) * 8 + x] = (pixels.data as Float32Array)[
            i * 784 + (y * 3 + 2) * 28 + (x * 3 + 2)
          ];
        }
      }
    }
  }
  return selectRows(
    { ...mnist, inputs: new Map([['pixel_values', { dtype: 'F32', shape: [n, 3, 8, 8], data }]]) },
    Array.from({ length: n }, (_, i) => i),
  );
}

describe('evaluation', () => {
  before(() => initBackend({ prefer: process.env.LORAFUSE_BACKEND ?? 'wasm', log: () => {} }));

  it('over two worker threads gives what one runtime gives', async () => {
    const dataset = fixtureDigits();
    const model = await loadModel(path.join(VIT, 'model'));
    const adapter = await loadAdapter(path.join(VIT, 'adapter'), model);
    const single = await evaluateModel(model, contextFor(model, adapter), dataset);
    adapter.dispose();
    model.dispose();
    const parallel = await evaluateParallel({
      modelDir: path.join(VIT, 'model'),
      adapterDir: path.join(VIT, 'adapter'),
      dataset,
      workers: 2,
    });
    assert.equal(parallel.examples, 40);
    assert.deepEqual([...parallel.predictions], [...single.predictions]);
    assert.equal(parallel.accuracy, single.accuracy);
    assert.ok(Math.abs(parallel.loss - single.loss) < 1e-5);
  });

  it('hands its workers back warm, and a warm worker serves the next job (another adapter) correctly', async () => {
    await endIdleRuntimes();
    const dataset = fixtureDigits();
    const model = await loadModel(path.join(VIT, 'model'));
    const adapter = await loadAdapter(path.join(VIT, 'adapter'), model);
    const withAdapter = await evaluateModel(model, contextFor(model, adapter), dataset);
    const baseOnly = await evaluateModel(model, contextFor(model, null), dataset);
    adapter.dispose();
    model.dispose();
    assert.notDeepEqual(
      [...withAdapter.predictions],
      [...baseOnly.predictions],
      'the adapter changes predictions',
    );
    const modelDir = path.join(VIT, 'model');
    const adapterDir = path.join(VIT, 'adapter');
    const first = await evaluateParallel({ modelDir, adapterDir, dataset, workers: 2 });
    assert.equal(idleRuntimeCount(), 2, 'both workers parked warm');
    // The same two workers, re-initialised without the adapter: nothing of the first job may linger.
    const second = await evaluateParallel({ modelDir, dataset, workers: 2 });
    assert.equal(idleRuntimeCount(), 2, 'reused, not spawned anew');
    const third = await evaluateParallel({ modelDir, adapterDir, dataset, workers: 2 });
    assert.deepEqual([...first.predictions], [...withAdapter.predictions]);
    assert.deepEqual([...second.predictions], [...baseOnly.predictions]);
    assert.deepEqual([...third.predictions], [...withAdapter.predictions]);
    assert.ok(Math.abs(second.loss - baseOnly.loss) < 1e-5);
    await endIdleRuntimes();
    assert.equal(idleRuntimeCount(), 0);
  });

  it('ends parked workers after the idle time it is given (LORAFUSE_RUNTIME_IDLE_MS), and at once when it is 0', async () => {
    const dataset = fixtureDigits();
    const modelDir = path.join(VIT, 'model');
    try {
      const immediate = loadRuntimeSettings({ LORAFUSE_RUNTIME_IDLE_MS: '0' }).runtimeIdleMs;
      await evaluateParallel({ modelDir, dataset, workers: 2, runtimeIdleMs: immediate });
      assert.equal(idleRuntimeCount(), 0);
      const brief = loadRuntimeSettings({ LORAFUSE_RUNTIME_IDLE_MS: '300' }).runtimeIdleMs;
      await evaluateParallel({ modelDir, dataset, workers: 2, runtimeIdleMs: brief });
      assert.equal(idleRuntimeCount(), 2);
      await new Promise((resolve) => setTimeout(resolve, 600));
      assert.equal(idleRuntimeCount(), 0);
    } finally {
      await endIdleRuntimes();
    }
  });

  it('src/config.ts reads LORAFUSE_RUNTIME_IDLE_MS, and rejects what is not whole milliseconds', () => {
    const idle = (env: NodeJS.ProcessEnv) => loadRuntimeSettings(env).runtimeIdleMs;
    assert.equal(idle({}), 60_000);
    assert.equal(idle({ LORAFUSE_RUNTIME_IDLE_MS: '0' }), 0);
    assert.equal(idle({ LORAFUSE_RUNTIME_IDLE_MS: '1500' }), 1500);
    for (const bad of ['-1', '1.5', 'soon', '86400001']) {
      assert.throws(
        () => idle({ LORAFUSE_RUNTIME_IDLE_MS: bad }),
        (err: unknown) => err instanceof ConfigError && err.message.startsWith('LORAFUSE_RUNTIME_IDLE_MS'),
        bad,
      );
    }
  });

  it('MNIST datasets hold real digits with task labels and class names', () => {
    const digits = buildMnistDataset({ task: 'digits', split: 'train', perDigit: 3 });
    const parity = buildMnistDataset({ task: 'parity', split: 'train', perDigit: 3 });
    assert.deepEqual(digits.inputs.get('pixel_values')!.shape, [30, 1, 28, 28]);
    assert.deepEqual(
      [...digits.labels].sort(),
      [0, 0, 0, 1, 1, 1, 2, 2, 2, 3, 3, 3, 4, 4, 4, 5, 5, 5, 6, 6, 6, 7, 7, 7, 8, 8, 8, 9, 9, 9],
    );
    assert.deepEqual(
      [...parity.labels],
      [...digits.labels].map((d) => d % 2),
    );
    assert.deepEqual(parity.classNames, ['even', 'odd']);
    const values = digits.inputs.get('pixel_values')!.data as Float32Array;
    assert.ok(
      values.some((v) => v > 0.9) && values.some((v) => v === -1),
      'scaled to [-1, 1] with ink and background',
    );
    const test = buildMnistDataset({ task: 'digits', split: 'test', perDigit: 3 });
    assert.notDeepEqual(test.inputs.get('pixel_values')!.data, values);
  });
});
