import assert from 'node:assert/strict';
import path from 'node:path';
import { initBackend } from '../../src/model/backend.ts';
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
