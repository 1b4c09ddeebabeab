import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import * as tf from '@tensorflow/tfjs';
import { ParamStore } from '../../src/model/params.ts';
import { testBackend } from './helpers.ts';

describe('ParamStore', () => {
  before(testBackend);

  it('keeps one [out, in] copy of a frozen linear weight, none of a trainable one, and frees it with the store', () => {
    const before = tf.memory().numTensors;
    const hf = Float32Array.from({ length: 6 }, (_, i) => i); // HF layout [out 2, in 3]
    const store = ParamStore.fromHost(
      new Map([
        ['lin.weight', { dtype: 'F32' as const, shape: [2, 3], data: hf }],
        ['head.weight', { dtype: 'F32' as const, shape: [2, 3], data: hf }],
      ]),
      ['lin', 'head'],
    );
    const initial = store.get('head.weight').clone();
    store.replace('head.weight', tf.variable(initial));
    initial.dispose(); // the variable holds its own copy
    const outIn = store.outInLayout('lin.weight');
    assert.ok(outIn);
    assert.deepEqual(outIn.shape, [2, 3]);
    assert.deepEqual(Array.from(outIn.dataSync()), Array.from(hf));
    assert.equal(store.outInLayout('lin.weight'), outIn, 'made once');
    assert.equal(store.outInLayout('head.weight'), undefined, 'a Variable changes every step');
    store.dispose();
    assert.equal(tf.memory().numTensors, before);
  });
});
