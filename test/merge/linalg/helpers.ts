// Random test matrices for the linear-algebra tests (seeded, so failures reproduce).
import { type DenseMatrix, zeros } from '../../../src/merge/linalg/dense.ts';
import { gaussian, seededStream } from '../../../src/merge/linalg/seeded-random.ts';

export function randomMatrix(rows: number, cols: number, seed: number): DenseMatrix {
  const random = seededStream(seed);
  const m = zeros(rows, cols);
  for (let i = 0; i < m.data.length; i++) m.data[i] = gaussian(random);
  return m;
}

export function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) throw new Error(`length ${a.length} vs ${b.length}`);
  let worst = 0;
  for (let i = 0; i < a.length; i++) worst = Math.max(worst, Math.abs(a[i] - b[i]));
  return worst;
}
