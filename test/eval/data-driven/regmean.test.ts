import assert from 'node:assert/strict';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { firstRows, loadDataDrivenInputs } from '../../../src/eval/data-driven/merge-inputs.ts';
import { inputGrams, regmeanKernel } from '../../../src/eval/data-driven/regmean.ts';
import { fromArray, matmul, matmulTransposeA } from '../../../src/merge/linalg/dense.ts';
import { householderQr } from '../../../src/merge/linalg/qr.ts';
import { seededUniform } from '../../../src/model/random.ts';
import { assertClose, removeScratchDirs, testBackend } from '../../model/helpers.ts';
import { buildTaskCase, MLP_BASE, plainAverage, runMethod, scoreMerged, type TaskCase } from './task-case.ts';

/** Seeded uniform values in [−1, 1). */
function values(count: number, seed: number): Float64Array {
  const uniform = seededUniform(seed);
  return Float64Array.from({ length: count }, () => uniform() * 2 - 1);
}

/** XᵀX / rows of a row-major [rows, cols] matrix. */
function gramOf(x: Float64Array, rows: number, cols: number): Float64Array {
  const g = matmulTransposeA(fromArray(rows, cols, x), fromArray(rows, cols, x)).data;
  return g.map((v) => v / rows);
}

describe('regmean', () => {
  let models: TaskCase;
  let adapters: TaskCase;
  before(async () => {
    await testBackend();
    models = await buildTaskCase('full', 3);
    adapters = await buildTaskCase('lora', 3);
  });
  after(removeScratchDirs);

  it('alpha = 1 is the least-squares solution of min Σᵢ ‖XᵢK − XᵢKᵢ‖² / rowsᵢ (solved independently by QR)', () => {
    const inF = 6;
    const outF = 4;
    const rows = [20, 9];
    const xs = rows.map((r, i) => values(r * inF, 10 + i));
    const kernels = rows.map((_, i) => Float32Array.from(values(inF * outF, 20 + i)));
    const merged = regmeanKernel(
      xs.map((x, i) => gramOf(x, rows[i], inF)),
      kernels,
      inF,
      outF,
      1,
    );
    // Stack the scaled rows Z = [Xᵢ/√rowsᵢ] and targets T = [XᵢKᵢ/√rowsᵢ]; K = R⁻¹QᵀT.
    const total = rows[0] + rows[1];
    const z = new Float64Array(total * inF);
    const t = new Float64Array(total * outF);
    let offset = 0;
    xs.forEach((x, i) => {
      const scale = 1 / Math.sqrt(rows[i]);
      const target = matmul(fromArray(rows[i], inF, x), fromArray(inF, outF, kernels[i])).data;
      for (let r = 0; r < rows[i]; r++) {
        for (let c = 0; c < inF; c++) z[(offset + r) * inF + c] = x[r * inF + c] * scale;
        for (let c = 0; c < outF; c++) t[(offset + r) * outF + c] = target[r * outF + c] * scale;
      }
      offset += rows[i];
    });
    const { q, r } = householderQr(fromArray(total, inF, z));
    const qtT = matmulTransposeA(q, fromArray(total, outF, t)).data;
    const expected = new Float64Array(inF * outF);
    for (let c = 0; c < outF; c++) {
      for (let i = inF - 1; i >= 0; i--) {
        let sum = qtT[i * outF + c];
        for (let k = i + 1; k < inF; k++) sum -= r.data[i * inF + k] * expected[k * outF + c];
        expected[i * outF + c] = sum / r.data[i * inF + i];
      }
    }
    assertClose(merged, expected, 1e-9, 1e-10);
  });

  it('alpha = 0 weighs each input row by its diagonal Gram entry; inputs no task reaches are averaged', () => {
    const inF = 3;
    const outF = 2;
    const g1 = Float64Array.from([2, 0.5, 0, 0.5, 1, 0, 0, 0, 0]);
    const g2 = Float64Array.from([1, 0.3, 0, 0.3, 3, 0, 0, 0, 0]);
    const k1 = Float32Array.from([1, 2, 3, 4, 5, 6]);
    const k2 = Float32Array.from([-1, 0, 1, 2, -3, 8]);
    const merged = regmeanKernel([g1, g2], [k1, k2], inF, outF, 0);
    const expected = [
      (2 * 1 + 1 * -1) / 3,
      (2 * 2 + 1 * 0) / 3,
      (1 * 3 + 3 * 1) / 4,
      (1 * 4 + 3 * 2) / 4,
      (5 - 3) / 2,
      (6 + 8) / 2,
    ];
    assertClose(merged, expected, 1e-6, 1e-9);
  });

  it("records each linear module's input Gram XᵀX / rows during the forward pass", async () => {
    const inputs = await loadDataDrivenInputs({ kind: 'models', inputDirs: [models.inputs[0]] });
    try {
      const examples = firstRows(models.tasks[0].validation, 50);
      const grams = await inputGrams(inputs, inputs.dense[0], examples, undefined, 16);
      assert.deepEqual([...grams.keys()].sort(), ['classifier', 'layers.0', 'layers.1']);
      const x = Float64Array.from(examples.inputs.get('pixel_values')!.data as Float32Array);
      assertClose(grams.get('layers.0')!.gram, gramOf(x, 50, 48), 1e-4, 1e-6);
    } finally {
      inputs.dispose();
    }
  });

  it('full models: beats plain averaging on held-out test data', async () => {
    const rel = (p: string) => path.relative(models.dir, p);
    const result = await runMethod(models, {
      merge_method: 'regmean',
      models: models.inputs.map((input) => ({ model: rel(input) })),
    });
    assert.deepEqual([...(result.report.details!.closedFormModules as string[])].sort(), [
      'classifier',
      'layers.0',
      'layers.1',
    ]);
    const merged = await scoreMerged(models, { model: result.outDir }, 'models');
    const average = await scoreMerged(models, { model: await plainAverage(models, 'model') }, 'models');
    assert.ok(
      merged.meanAccuracy > average.meanAccuracy + 0.05,
      `regmean ${merged.accuracy} vs ${average.accuracy}`,
    );
  });

  it('LoRA adapters (dense W₀ + sBA): beats plain averaging of the deltas', async () => {
    const rel = (p: string) => path.relative(adapters.dir, p);
    const result = await runMethod(adapters, {
      merge_method: 'regmean',
      base_model: rel(MLP_BASE),
      models: adapters.inputs.map((input) => ({ adapter: rel(input) })),
    });
    const merged = await scoreMerged(adapters, { model: result.outDir }, 'adapters');
    const averageDir = await plainAverage(adapters, 'adapter', {
      base_model: rel(MLP_BASE),
      lora: { space: 'delta', output: 'model' },
    });
    const average = await scoreMerged(adapters, { model: averageDir }, 'adapters');
    assert.ok(
      merged.meanAccuracy > average.meanAccuracy + 0.02,
      `regmean ${merged.accuracy} vs ${average.accuracy}`,
    );
  });
});
