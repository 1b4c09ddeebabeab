import assert from 'node:assert/strict';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../../src/model/backend.ts';
import { simdKernelsActive } from '../../src/model/simd/simd-kernels.ts';
import { tempDir } from '../helpers/redis.ts';

export const FIXTURES = path.join(import.meta.dirname, '..', 'fixtures', 'model');

/** Tests run on wasm unless LORAFUSE_BACKEND says otherwise (cpu also works, 40× slower). */
export async function testBackend(): Promise<void> {
  await initBackend({ prefer: process.env.LORAFUSE_BACKEND ?? 'wasm', log: () => {} });
}

/** The wasm backend whatever LORAFUSE_BACKEND says: for tests of lorafuse's SIMD kernels, which exist only there. */
export async function wasmBackend(): Promise<void> {
  await initBackend({ prefer: 'wasm', log: () => {} });
}

/**
 * The backends the op tests run on: wasm, where lorafuse's SIMD kernels serve the ops, and cpu, where the tf-op
 * paths of nn/functional.ts run (the paths cpu, webgpu and tfjs-node take).
 */
export const OP_BACKENDS = ['wasm', 'cpu'] as const;

/** A before() hook that makes `name` the active backend (the SIMD kernels installed, active only on wasm). */
export function onBackend(name: (typeof OP_BACKENDS)[number]): () => Promise<void> {
  return async () => {
    await wasmBackend();
    await tf.setBackend(name);
    await tf.ready();
    assert.equal(tf.getBackend(), name);
    assert.equal(simdKernelsActive(), name === 'wasm');
  };
}

/** |a - b| <= atol + rtol·|b| elementwise, reporting the worst element. */
export function assertClose(
  actual: ArrayLike<number>,
  expected: ArrayLike<number>,
  rtol: number,
  atol: number,
): void {
  assert.equal(actual.length, expected.length, 'lengths differ');
  let worst = -1;
  let worstExcess = 0;
  for (let i = 0; i < expected.length; i++) {
    const excess = Math.abs(actual[i] - expected[i]) - (atol + rtol * Math.abs(expected[i]));
    if (excess > worstExcess) {
      worstExcess = excess;
      worst = i;
    }
  }
  assert.ok(
    worst < 0,
    `element ${worst}: ${actual[worst]} vs ${expected[worst]} (rtol ${rtol}, atol ${atol})`,
  );
}

const scratch: Array<() => void> = [];

/** A fresh temporary folder, removed by removeScratchDirs (call it in `after`). */
export function scratchDir(): string {
  const { dir, remove } = tempDir('lorafuse-model');
  scratch.push(remove);
  return dir;
}

export function removeScratchDirs(): void {
  for (const remove of scratch.splice(0)) remove();
}
