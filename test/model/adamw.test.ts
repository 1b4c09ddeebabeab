import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import * as tf from '@tensorflow/tfjs';
import { ADAMW_DEFAULTS, AdamW } from '../../src/model/train/adamw.ts';
import { assertClose, wasmBackend } from './helpers.ts';

/** torch.optim.AdamW + clip_grad_norm_ in float64, one tensor at a time (the textbook form). */
function referenceSteps(
  params: Record<string, { data: number[]; matrix: boolean }>,
  gradSteps: Array<Record<string, number[]>>,
  lr: number,
  maxNorm: number,
): Record<string, number[]> {
  const [b1, b2, eps, wd] = [0.9, 0.999, 1e-8, 0.01];
  const p = Object.fromEntries(Object.entries(params).map(([k, v]) => [k, [...v.data]]));
  const m = Object.fromEntries(Object.entries(params).map(([k, v]) => [k, v.data.map(() => 0)]));
  const s = Object.fromEntries(Object.entries(params).map(([k, v]) => [k, v.data.map(() => 0)]));
  gradSteps.forEach((grads, i) => {
    const t = i + 1;
    const norm = Math.sqrt(Object.values(grads).reduce((a, g) => a + g.reduce((b, x) => b + x * x, 0), 0));
    const factor = norm > maxNorm ? maxNorm / (norm + 1e-6) : 1;
    for (const [k, g0] of Object.entries(grads)) {
      for (let j = 0; j < g0.length; j++) {
        const g = g0[j] * factor;
        if (params[k].matrix) p[k][j] *= 1 - lr * wd;
        m[k][j] = b1 * m[k][j] + (1 - b1) * g;
        s[k][j] = b2 * s[k][j] + (1 - b2) * g * g;
        p[k][j] -= (lr * (m[k][j] / (1 - b1 ** t))) / (Math.sqrt(s[k][j] / (1 - b2 ** t)) + eps);
      }
    }
  });
  return p;
}

describe('AdamW and gradient clipping', () => {
  // wasm: the only backend where all three placements run (simd needs lorafuse's kernels).
  before(wasmBackend);

  // SIMD kernels are the default on wasm, host moments on cpu, device moments on GPU backends: all three run here.
  for (const placement of ['simd', 'host', 'device'] as const) {
    it(`${placement}: matches torch.optim.AdamW with clip_grad_norm_ (decay on matrices only), float32 rtol 1e-5`, () => {
      const params = {
        weight: { data: [0.5, -0.25, 1, 2, -1, 0.125], matrix: true },
        bias: { data: [0.1, -0.2, 0.3], matrix: false },
      };
      const variables = new Map<string, tf.Variable>([
        ['weight', tf.variable(tf.tensor2d(params.weight.data, [2, 3]))],
        ['bias', tf.variable(tf.tensor1d(params.bias.data))],
      ]);
      // Large gradients on the first step (clipped), small ones on the others (not clipped).
      const gradSteps = [
        { weight: [3, -4, 5, 1, 0, -2], bias: [2, 2, -2] },
        { weight: [0.01, -0.02, 0.03, 0, 0.05, -0.01], bias: [0.02, -0.01, 0] },
        { weight: [-0.03, 0.01, 0, 0.02, -0.04, 0.01], bias: [0, 0.03, -0.02] },
      ];
      const optimizer = new AdamW(variables, ADAMW_DEFAULTS, placement);
      for (const grads of gradSteps) {
        const named = new Map<string, tf.Tensor>([
          ['weight', tf.tensor2d(grads.weight, [2, 3])],
          ['bias', tf.tensor1d(grads.bias)],
        ]);
        optimizer.update(named, 0.1, 1); // disposes the gradient tensors
      }
      const expected = referenceSteps(params, gradSteps, 0.1, 1);
      for (const [key, variable] of variables) assertClose(variable.dataSync(), expected[key], 1e-5, 1e-6);
      optimizer.dispose();
      for (const variable of variables.values()) variable.dispose();
    });

    it(`${placement}: leaves a variable without a gradient unchanged`, () => {
      const a = tf.variable(tf.tensor2d([1, 2, 3, 4], [2, 2]));
      const b = tf.variable(tf.tensor1d([5, 6]));
      const optimizer = new AdamW(
        new Map<string, tf.Variable>([
          ['a', a],
          ['b', b],
        ]),
        ADAMW_DEFAULTS,
        placement,
      );
      const grad = tf.tensor1d([1, 1]);
      optimizer.update(new Map([['b', grad]]), 0.1, 1);
      assert.deepEqual([...a.dataSync()], [1, 2, 3, 4]);
      assert.ok(b.dataSync().every((x, i) => x < [5, 6][i]));
      optimizer.dispose();
      a.dispose();
      b.dispose();
    });
  }
});
