import assert from 'node:assert/strict';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import * as tf from '@tensorflow/tfjs';
import { diagonalFisher, fisherWeightedAverage } from '../../../src/eval/data-driven/fisher-merging.ts';
import { firstRows, loadDataDrivenInputs } from '../../../src/eval/data-driven/merge-inputs.ts';
import { predict } from '../../../src/model/inference.ts';
import { seededUniform } from '../../../src/model/random.ts';
import { assertClose, removeScratchDirs, testBackend } from '../../model/helpers.ts';
import {
  buildTaskCase,
  MLP_BASE,
  perturbedModels,
  plainAverage,
  runMethod,
  scoreMerged,
  type TaskCase,
} from './task-case.ts';

describe('fisher merging', () => {
  let models: TaskCase;
  let adapters: TaskCase;
  before(async () => {
    await testBackend();
    models = await buildTaskCase('full', 3);
    adapters = await buildTaskCase('lora', 3);
  });
  after(removeScratchDirs);

  it('with equal Fishers it is plain averaging', async () => {
    const inputs = await loadDataDrivenInputs({ kind: 'models', inputDirs: await perturbedModels(3, 0.3) });
    const uniform = seededUniform(4);
    const shared = new Map(
      inputs.dense[0].names().map((name) => {
        const t = inputs.dense[0].get(name);
        return [
          name,
          tf.tensor(
            Float32Array.from({ length: t.size }, () => uniform() * 5),
            t.shape,
          ),
        ];
      }),
    );
    try {
      const merged = fisherWeightedAverage(inputs.dense, [shared, shared, shared], [1, 1, 1], 0);
      for (const name of merged.names()) {
        const expected = tf.tidy(() => tf.div(tf.addN(inputs.dense.map((d) => d.get(name))), 3).dataSync());
        assertClose(merged.get(name).dataSync(), expected, 1e-5, 1e-6);
      }
      merged.dispose();
    } finally {
      for (const t of shared.values()) t.dispose();
      inputs.dispose();
    }
  });

  it('the Fisher is the mean squared per-example gradient (checked on the head bias: ∂CE/∂b = softmax − onehot)', async () => {
    const inputs = await loadDataDrivenInputs({ kind: 'models', inputDirs: [models.inputs[0]] });
    try {
      const examples = firstRows(models.tasks[0].validation, 40);
      const fisher = await diagonalFisher(inputs, inputs.dense[0], examples);
      const { logits } = await predict(inputs.runtime, examples.inputs);
      const classes = logits!.shape[1];
      const expected = new Float64Array(classes);
      for (let n = 0; n < 40; n++) {
        const row = Array.from((logits!.data as Float32Array).subarray(n * classes, (n + 1) * classes));
        const max = Math.max(...row);
        const exps = row.map((v) => Math.exp(v - max));
        const sum = exps.reduce((s, v) => s + v, 0);
        exps.forEach((e, c) => {
          expected[c] += (e / sum - (c === examples.labels[n] ? 1 : 0)) ** 2 / 40;
        });
      }
      assertClose(fisher.get('classifier.bias')!.dataSync(), expected, 1e-4, 1e-7);
      for (const t of fisher.values()) t.dispose();
    } finally {
      inputs.dispose();
    }
  });

  it('full models: beats plain averaging on held-out test data', async () => {
    const rel = (p: string) => path.relative(models.dir, p);
    const result = await runMethod(models, {
      merge_method: 'fisher',
      models: models.inputs.map((input) => ({ model: rel(input) })),
    });
    const merged = await scoreMerged(models, { model: result.outDir }, 'models');
    const average = await scoreMerged(models, { model: await plainAverage(models, 'model') }, 'models');
    assert.ok(
      merged.meanAccuracy > average.meanAccuracy + 0.05,
      `fisher ${merged.accuracy} vs ${average.accuracy}`,
    );
    assert.deepEqual(result.report.examples, [128, 128, 128]);
  });

  it('LoRA adapters (dense W₀ + sBA): beats plain averaging of the deltas', async () => {
    const rel = (p: string) => path.relative(adapters.dir, p);
    const result = await runMethod(adapters, {
      merge_method: 'fisher',
      base_model: rel(MLP_BASE),
      models: adapters.inputs.map((input) => ({ adapter: rel(input) })),
      parameters: { examples: 64 },
    });
    assert.equal(result.kind, 'model');
    const merged = await scoreMerged(adapters, { model: result.outDir }, 'adapters');
    const averageDir = await plainAverage(adapters, 'adapter', {
      base_model: rel(MLP_BASE),
      lora: { space: 'delta', output: 'model' },
    });
    const average = await scoreMerged(adapters, { model: averageDir }, 'adapters');
    assert.ok(
      merged.meanAccuracy > average.meanAccuracy + 0.02,
      `fisher ${merged.accuracy} vs ${average.accuracy}`,
    );
  });
});
