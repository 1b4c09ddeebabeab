// The runtime's weight disentanglement (two adapters as one rank-(r₁+r₂) LoRA module per target, single-task
// predictions reused from the grid) against the plain definition in metrics.ts over densely merged weights
// W + λ₁s₁B₁A₁ + λ₂s₂B₂A₂, each task read through its own adapter's head.
import assert from 'node:assert/strict';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import * as tf from '@tensorflow/tfjs';
import { adapterPair, modelPair, weightDisentanglement } from '../../src/eval/analysis/disentanglement.ts';
import { disentanglementError } from '../../src/eval/metrics.ts';
import { evaluateModel } from '../../src/model/evaluate-model.ts';
import { ForwardContext } from '../../src/model/forward-context.ts';
import { type LoadedModel, loadModel } from '../../src/model/load-model.ts';
import { ParamStore } from '../../src/model/params.ts';
import { type LoadedAdapter, loadAdapter } from '../../src/model/lora/peft-adapter.ts';
import type { Dataset } from '../../src/model/train/dataset.ts';
import { mlpTask } from '../store/dataset-fixtures.ts';
import { FIXTURES, testBackend } from '../model/helpers.ts';

function dataset(seed: number, n: number): Dataset {
  const { pixels, labels } = mlpTask(n, seed);
  return {
    inputs: new Map([['pixel_values', { dtype: 'F32' as const, shape: [n, 3, 4, 4], data: pixels }]]),
    labels: Int32Array.from(labels, (v) => Number(v)),
    task: `t${seed}`,
    split: 'validation',
    classNames: ['n', 'e', 's', 'w'],
  };
}

describe('weight disentanglement on the runtime', () => {
  let model: LoadedModel;
  let adapters: [LoadedAdapter, LoadedAdapter];
  before(async () => {
    await testBackend();
    const dir = path.join(FIXTURES, 'mlp');
    model = await loadModel(path.join(dir, 'model'));
    const first = await loadAdapter(path.join(dir, 'adapter'), model);
    const second = await loadAdapter(path.join(dir, 'adapter'), model);
    // A second, different task vector: B rotated in sign and scale, A shifted; its own head (negated).
    for (const lora of second.modules.values()) {
      const bT = tf.mul(tf.reverse(lora.bT, 1), -1.3) as tf.Tensor2D;
      const aT = tf.add(lora.aT, tf.mul(tf.reverse(lora.aT, 0), 0.5)) as tf.Tensor2D;
      lora.bT.dispose();
      lora.aT.dispose();
      lora.bT = bT;
      lora.aT = aT;
    }
    for (const [name, t] of second.overrides) {
      second.overrides.set(name, tf.neg(t));
      t.dispose();
    }
    adapters = [first, second];
  });
  after(() => {
    for (const a of adapters) a.dispose();
    model.dispose();
  });

  it('matches ξ computed from densely merged weights', async () => {
    const datasets: [Dataset, Dataset] = [dataset(11, 48), dataset(23, 40)];
    const grid = [-2, -1, 0, 0.5, 1, 2];
    const pair = adapterPair(model, adapters);
    const fast = await weightDisentanglement({ model, pair, datasets, grid, batchSize: 16 });
    pair.dispose();

    const dense = async (l1: number, l2: number, task: 0 | 1) => {
      const overrides = new Map(adapters[task].overrides);
      const made: tf.Tensor[] = [];
      for (const module of adapters[0].modules.keys()) {
        const name = `${module}.weight`;
        const merged = tf.tidy(() => {
          let w = model.params.get(name); // held as [in, out]
          for (const [i, l] of [l1, l2].entries()) {
            const lora = adapters[i].modules.get(module)!;
            w = tf.add(w, tf.mul(tf.matMul(lora.aT, lora.bT), l * lora.scale));
          }
          return w;
        });
        made.push(merged);
        overrides.set(name, merged);
      }
      const ctx = new ForwardContext(model.params, new Map(), overrides);
      const { predictions } = await evaluateModel(model, ctx, datasets[task]);
      for (const t of made) t.dispose();
      return predictions;
    };
    const reference = await disentanglementError(grid, dense);
    const sizes = [48, 40];
    let exact = 0;
    for (let i = 0; i < grid.length; i++) {
      for (let j = 0; j < grid.length; j++) {
        // float32 sums in another order may flip an argmax at a near-tie: at most one example per task
        assert.ok(
          Math.abs(fast.error[i][j] - reference[i][j]) <= 1 / sizes[0] + 1 / sizes[1] + 1e-12,
          `ξ(${grid[i]}, ${grid[j]}) = ${fast.error[i][j]}, dense ${reference[i][j]}`,
        );
        if (fast.error[i][j] === reference[i][j]) exact++;
      }
    }
    assert.ok(exact >= grid.length * grid.length - 2, `${exact} of ${grid.length ** 2} cells equal`);
    assert.ok(
      reference.flat().some((v) => v > 0.1),
      'the two task vectors interfere',
    );
    // one pass per task per λ for the single-task models, then two per off-axis grid point
    assert.equal(fast.forwardPasses, 2 * grid.length + 2 * (grid.length - 1) * grid.length);
  });

  it('fine-tuned models (W + s·B·A, their own heads) give the same ξ as the adapters they were made from', async () => {
    const datasets: [Dataset, Dataset] = [dataset(5, 32), dataset(6, 32)];
    const grid = [-1, 0, 1, 2];
    const models = adapters.map((adapter): LoadedModel => {
      const params = new ParamStore();
      for (const name of model.params.names()) {
        const module = name.replace(/\.(weight|bias)$/, '');
        const lora = name.endsWith('.weight') ? adapter.modules.get(module) : undefined;
        const head = adapter.overrides.get(name);
        params.tensors.set(
          name,
          tf.tidy(() =>
            head
              ? tf.clone(head)
              : lora
                ? tf.add(model.params.get(name), tf.mul(tf.matMul(lora.aT, lora.bT), lora.scale))
                : tf.clone(model.params.get(name)),
          ),
        );
      }
      return { ...model, params, dispose: () => params.dispose() };
    }) as [LoadedModel, LoadedModel];
    const fromAdapters = adapterPair(model, adapters);
    const fromModels = modelPair(model, models);
    const a = await weightDisentanglement({ model, pair: fromAdapters, datasets, grid });
    const m = await weightDisentanglement({ model, pair: fromModels, datasets, grid });
    fromAdapters.dispose();
    fromModels.dispose();
    for (const x of models) x.dispose();
    for (let i = 0; i < grid.length; i++) {
      for (let j = 0; j < grid.length; j++) {
        assert.ok(Math.abs(a.error[i][j] - m.error[i][j]) <= 2 / 32 + 1e-12, `ξ(${grid[i]}, ${grid[j]})`);
      }
    }
    assert.ok(
      m.error.flat().some((v) => v > 0),
      'the models interfere too',
    );
  });
});
