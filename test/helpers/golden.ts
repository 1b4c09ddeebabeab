// Loads the reference cases in test/fixtures/golden (copied into the repository, see its PROVENANCE.md)
// and compares tensors with a case's tolerance: |a − e| ≤ atol + rtol·|e| elementwise.
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Checkpoint } from '../../src/tensors/index.ts';

export const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
export const GOLDEN_DIR = path.join(REPO_ROOT, 'test', 'fixtures', 'golden');

export interface Tolerance {
  rtol: number;
  atol: number;
}

export function goldenCaseDir(name: string): string {
  return path.join(GOLDEN_DIR, name);
}

// biome-ignore lint/suspicious/noExplicitAny: case.json is free-form reference data read by tests
export function readCaseJson(name: string): Record<string, any> {
  return JSON.parse(readFileSync(path.join(goldenCaseDir(name), 'case.json'), 'utf8'));
}

/** Every tensor of one golden .safetensors file as float32. */
export async function readGoldenTensors(
  file: string,
): Promise<Map<string, { shape: number[]; data: Float32Array }>> {
  const checkpoint = await Checkpoint.openFiles({ 'model.safetensors': file });
  try {
    const out = new Map<string, { shape: number[]; data: Float32Array }>();
    for (const name of checkpoint.names()) {
      out.set(name, { shape: checkpoint.info(name).shape, data: await checkpoint.readFloat32(name) });
    }
    return out;
  } finally {
    await checkpoint.close();
  }
}

/** Null when every element is within tolerance, else a description of the worst element. */
export function compareTensors(actual: Float32Array, expected: Float32Array, tol: Tolerance): string | null {
  if (actual.length !== expected.length) return `length ${actual.length} vs ${expected.length}`;
  let worst = -1;
  let worstExcess = 0;
  let failures = 0;
  for (let i = 0; i < expected.length; i++) {
    const limit = tol.atol + tol.rtol * Math.abs(expected[i]);
    const diff = Math.abs(actual[i] - expected[i]);
    if (!(diff <= limit)) {
      failures++;
      if (worst < 0 || diff - limit > worstExcess || Number.isNaN(diff)) {
        worst = i;
        worstExcess = diff - limit;
      }
    }
  }
  if (failures === 0) return null;
  return `${failures} of ${expected.length} elements out of tolerance; worst at ${worst}: ${actual[worst]} vs ${expected[worst]}`;
}
