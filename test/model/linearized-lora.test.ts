import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import * as tf from '@tensorflow/tfjs';
import { initLoraFactors } from '../../src/model/lora/lora-init.ts';
import { linearizedUpdate, loraUpdate } from '../../src/model/lora/lora-module.ts';
import { assertClose, onBackend, OP_BACKENDS } from './helpers.ts';

const IN = 12;
const OUT = 10;
const RANK = 3;
const SCALE = 1.5;

function random(shape: [number, number], seed: number): tf.Tensor2D {
  return tf.randomNormal(shape, 0, 1, 'float32', seed) as tf.Tensor2D;
}

/** Nonlinear LoRA s·B·A·x with factors given transposed. */
function plain(x: tf.Tensor2D, aT: tf.Tensor2D, bT: tf.Tensor2D): tf.Tensor2D {
  return loraUpdate(x, { module: 'm', rank: RANK, scale: SCALE, aT, bT, linearized: false });
}

for (const backend of OP_BACKENDS) {
  describe(`L-LoRA layer (${backend})`, () => {
    before(onBackend(backend));
    const x = () => random([5, IN], 1);
    const a0T = () => random([IN, RANK], 2);
    const b0T = () => random([RANK, OUT], 3); // non-zero B₀: every term of the expansion matters
    const dAT = () => random([IN, RANK], 4);
    const dBT = () => random([RANK, OUT], 5);

    it('equals plain LoRA at the expansion point', () => {
      tf.tidy(() => {
        const linear = linearizedUpdate(x(), a0T(), b0T(), a0T(), b0T(), SCALE, false);
        assertClose(linear.dataSync(), plain(x(), a0T(), b0T()).dataSync(), 1e-6, 1e-6);
      });
    });

    it('agrees with the nonlinear layer to first order: the gap is exactly s·ΔB·ΔA·x (O(‖Δ‖²))', () => {
      tf.tidy(() => {
        for (const eps of [1e-1, 1e-2]) {
          const aT = tf.add(a0T(), tf.mul(dAT(), eps)) as tf.Tensor2D;
          const bT = tf.add(b0T(), tf.mul(dBT(), eps)) as tf.Tensor2D;
          const gap = tf.sub(plain(x(), aT, bT), linearizedUpdate(x(), aT, bT, a0T(), b0T(), SCALE, false));
          const secondOrder = tf.mul(tf.matMul(tf.matMul(x(), dAT()), dBT()), SCALE * eps * eps);
          assertClose(gap.dataSync(), secondOrder.dataSync(), 1e-3, 1e-4 * eps);
        }
      });
    });

    it('has the nonlinear layer’s directional derivative (central finite differences)', () => {
      tf.tidy(() => {
        const eps = 1e-2;
        const shifted = (sign: number) =>
          plain(
            x(),
            tf.add(a0T(), tf.mul(dAT(), sign * eps)) as tf.Tensor2D,
            tf.add(b0T(), tf.mul(dBT(), sign * eps)) as tf.Tensor2D,
          );
        const finiteDifference = tf.div(tf.sub(shifted(1), shifted(-1)), 2 * eps);
        const aT = tf.add(a0T(), dAT()) as tf.Tensor2D;
        const bT = tf.add(b0T(), dBT()) as tf.Tensor2D;
        const linearStep = tf.sub(
          linearizedUpdate(x(), aT, bT, a0T(), b0T(), SCALE, false),
          plain(x(), a0T(), b0T()),
        );
        assertClose(linearStep.dataSync(), finiteDifference.dataSync(), 1e-3, 1e-3);
      });
    });

    it('gives A exactly zero gradient when B₀ = 0, and B a non-zero one', () => {
      tf.tidy(() => {
        const zeroB0 = tf.zeros([RANK, OUT]) as tf.Tensor2D;
        const loss = (aT: tf.Tensor, bT: tf.Tensor) =>
          tf.sum(
            tf.square(
              linearizedUpdate(x(), aT as tf.Tensor2D, bT as tf.Tensor2D, a0T(), zeroB0, SCALE, false),
            ),
          );
        const [gradA, gradB] = tf.grads(loss)([tf.add(a0T(), dAT()), dBT()]);
        assert.ok(gradA.dataSync().every((v) => v === 0));
        assert.ok(gradB.dataSync().some((v) => v !== 0));
      });
    });

    it('the B₀ = 0 shortcut computes the same update', () => {
      tf.tidy(() => {
        const zeroB0 = tf.zeros([RANK, OUT]) as tf.Tensor2D;
        const general = linearizedUpdate(x(), dAT(), dBT(), a0T(), zeroB0, SCALE, false);
        const shortcut = linearizedUpdate(x(), dAT(), dBT(), a0T(), zeroB0, SCALE, true);
        assertClose(shortcut.dataSync(), general.dataSync(), 1e-6, 1e-6);
      });
    });

    it('draws A₀ from the seed and the module name, with B₀ = 0', () => {
      const one = initLoraFactors('layers.0', IN, OUT, RANK, 42);
      assert.deepEqual(initLoraFactors('layers.0', IN, OUT, RANK, 42).a, one.a);
      assert.notDeepEqual(initLoraFactors('layers.0', IN, OUT, RANK, 43).a, one.a);
      assert.notDeepEqual(initLoraFactors('layers.1', IN, OUT, RANK, 42).a, one.a);
      assert.ok(one.b.every((v) => v === 0));
      assert.ok(one.a.every((v) => Math.abs(v) <= 1 / Math.sqrt(IN)));
    });
  });
}
