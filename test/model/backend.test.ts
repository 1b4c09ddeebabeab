import assert from 'node:assert/strict';
import { afterEach, describe, it } from 'node:test';
import * as tf from '@tensorflow/tfjs';
import { initBackend, resetBackendChoice } from '../../src/model/backend.ts';

describe('backend choice', () => {
  afterEach(resetBackendChoice);
  const quiet = { log: () => {} };

  it('auto passes over what this machine lacks (tfjs-node, a WebGPU adapter) and lands on a running backend', async () => {
    const info = await initBackend({ ...quiet, prefer: 'auto' });
    assert.equal(tf.getBackend(), info.tfBackend);
    const order = ['tfjs-node-gpu', 'tfjs-node', 'webgpu', 'wasm', 'cpu'];
    assert.deepEqual(
      info.skipped.map((s) => s.choice),
      order.slice(0, order.indexOf(info.choice)),
    );
    assert.equal(
      tf.tidy(() => tf.add(tf.scalar(2), tf.scalar(3)).dataSync()[0]),
      5,
    );
  });

  it('an explicit choice that cannot start fails over to wasm', async () => {
    const info = await initBackend({ ...quiet, prefer: 'webgpu' });
    if (info.choice === 'webgpu') return; // a machine with a GPU: nothing to fail over from
    assert.equal(info.choice, 'wasm');
    assert.equal(tf.getBackend(), 'wasm');
    assert.equal(info.skipped[0].choice, 'webgpu');
  });

  it('LORAFUSE_BACKEND=cpu runs on cpu, and the choice is logged', async () => {
    const lines: string[] = [];
    const previous = process.env.LORAFUSE_BACKEND;
    process.env.LORAFUSE_BACKEND = 'cpu';
    try {
      const info = await initBackend({ log: (line) => lines.push(line) });
      assert.equal(info.choice, 'cpu');
      assert.equal(tf.getBackend(), 'cpu');
      assert.match(lines.join('\n'), /tfjs backend cpu/);
    } finally {
      if (previous === undefined) delete process.env.LORAFUSE_BACKEND;
      else process.env.LORAFUSE_BACKEND = previous;
    }
  });

  it('rejects an unknown backend name', async () => {
    await assert.rejects(initBackend({ ...quiet, prefer: 'quantum' }), /not one of/);
  });
});
