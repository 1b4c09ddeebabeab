import assert from 'node:assert/strict';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import {
  type Coefficients,
  coefficientGroups,
  entropyAndGradient,
  taskVectors,
} from '../../../src/eval/data-driven/adamerging.ts';
import { loadDataDrivenInputs } from '../../../src/eval/data-driven/merge-inputs.ts';
import { removeScratchDirs, testBackend } from '../../model/helpers.ts';
import {
  buildTaskCase,
  MLP_BASE,
  perturbedModels,
  plainAverage,
  runMethod,
  scoreMerged,
  type TaskCase,
} from './task-case.ts';

describe('adamerging', () => {
  let setup: TaskCase;
  before(async () => {
    await testBackend();
    setup = await buildTaskCase('lora', 3);
  });
  after(removeScratchDirs);

  it('dL/dλ = Σ ⟨dL/dW, τ⟩ matches central finite differences of the entropy, layer-wise and task-wise', async () => {
    // Models around the base: every tensor has a task vector, so every body λ has a gradient.
    const inputs = await loadDataDrivenInputs({
      kind: 'models',
      inputDirs: await perturbedModels(2, 0.2),
      baseDir: MLP_BASE,
    });
    const tau = taskVectors(inputs);
    try {
      const batches = setup.tasks.slice(0, 2).map((task) => ({
        ...task.validation,
        labels: task.validation.labels.subarray(0, 32),
      }));
      const groups = coefficientGroups(inputs, 'layer');
      const lambdas = inputs.dense.map((_, i) => groups.map((_, k) => 0.2 + 0.1 * i + 0.05 * (k % 3)));
      const at: Coefficients = { groups, lambdas };
      const { gradient } = entropyAndGradient(inputs, tau, at, batches);
      const h = 1e-2;
      let checked = 0;
      for (let i = 0; i < lambdas.length; i++) {
        for (let k = 0; k < groups.length; k++) {
          const shifted = (delta: number): Coefficients => ({
            groups,
            lambdas: lambdas.map((row, r) => row.map((x, c) => (r === i && c === k ? x + delta : x))),
          });
          const plus = entropyAndGradient(inputs, tau, shifted(h), batches).loss;
          const minus = entropyAndGradient(inputs, tau, shifted(-h), batches).loss;
          const numeric = (plus - minus) / (2 * h);
          if (Math.abs(gradient[i][k]) > 1e-6 || Math.abs(numeric) > 1e-6) checked += 1;
          assert.ok(
            Math.abs(numeric - gradient[i][k]) <= 2e-3 + 3e-2 * Math.abs(numeric),
            `λ[${i}][${groups[k][0]}]: analytic ${gradient[i][k]}, finite difference ${numeric}`,
          );
        }
      }
      // 2 inputs × 4 body tensors; the classifier's λ has none: each task reads its own head.
      assert.equal(checked, 8);
      // Task-wise λ scales every tensor: its gradient is the sum of the layer-wise ones at the same point.
      const taskWise = entropyAndGradient(
        inputs,
        tau,
        { groups: [groups.flat()], lambdas: [[0.3], [0.3]] },
        batches,
      );
      const layerWise = entropyAndGradient(
        inputs,
        tau,
        { groups, lambdas: lambdas.map((row) => row.map(() => 0.3)) },
        batches,
      );
      taskWise.gradient.forEach((row, i) => {
        const sum = layerWise.gradient[i].reduce((s, g) => s + g, 0);
        assert.ok(Math.abs(row[0] - sum) <= 1e-4 + 1e-4 * Math.abs(sum), `${row[0]} vs ${sum}`);
      });
    } finally {
      for (const vectors of tau) for (const t of vectors.values()) t.dispose();
      inputs.dispose();
    }
  });

  it('beats plain averaging of the adapters (delta space) on held-out test data; the coefficients are reported', async () => {
    const rel = (p: string) => path.relative(setup.dir, p);
    const average = await scoreMerged(
      setup,
      {
        model: await plainAverage(setup, 'adapter', {
          base_model: rel(MLP_BASE),
          lora: { space: 'delta', output: 'model' },
        }),
      },
      'adapters',
    );
    for (const [granularity, learningRate] of [
      ['task', 0.02],
      ['layer', 0.01],
    ] as const) {
      const result = await runMethod(setup, {
        merge_method: 'adamerging',
        base_model: rel(MLP_BASE),
        models: setup.inputs.map((input) => ({ adapter: rel(input) })),
        parameters: { granularity, learning_rate: learningRate, steps: 40 },
      });
      assert.equal(result.kind, 'model');
      assert.equal(result.report.coefficients!.length, 3);
      assert.equal(result.report.objective!.length, 40);
      if (granularity === 'layer') {
        // one λ per task and tensor: layers.0-1, classifier weight and bias
        assert.equal(result.report.layerCoefficients!.length, 6);
      }
      const merged = await scoreMerged(setup, { model: result.outDir }, 'adapters');
      assert.ok(
        merged.meanAccuracy > average.meanAccuracy + 0.02,
        `${granularity}-wise ${merged.accuracy} vs averaging ${average.accuracy}`,
      );
      const objective = result.report.objective!.map((o) => o.value);
      assert.ok(objective.at(-1)! < objective[0], `entropy ${objective[0]} -> ${objective.at(-1)}`);
    }
  });
});
