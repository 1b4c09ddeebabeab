// Truncated SVD of a dense matrix of high rank: a seeded Gaussian range finder with power iterations
// (Halko, Martinsson & Tropp 2011), then an exact SVD of the small projected matrix. Small matrices,
// or ranks close to full, go straight to the exact SVD.
import type { RandomStream } from '../method.ts';
import {
  type DenseMatrix,
  frobeniusNorm,
  matmul,
  matmulTransposeA,
  matmulTransposeB,
  transpose,
  zeros,
} from './dense.ts';
import { denseSvd, type SvdResult } from './jacobi-svd.ts';
import { truncateSvd } from './low-rank-svd.ts';
import { householderQr } from './qr.ts';
import { gaussian } from './seeded-random.ts';

export interface TruncatedSvdOptions {
  random: RandomStream;
  /** Extra sketch columns beyond the rank (default 10). */
  oversample?: number;
  /** Power iterations, each re-orthonormalised (default 4). */
  powerIterations?: number;
  /** At or below this smaller dimension the exact SVD is used (default 128). */
  exactBelow?: number;
}

export interface TruncatedSvd extends SvdResult {
  /** ‖M − U·S·Vᵀ‖_F / ‖M‖_F (0 when M is zero), measured on M itself. */
  relativeError: number;
  exact: boolean;
}

export function truncatedSvd(m: DenseMatrix, rank: number, options: TruncatedSvdOptions): TruncatedSvd {
  const small = Math.min(m.rows, m.cols);
  const sketch = Math.min(small, rank + (options.oversample ?? 10));
  let svd: SvdResult;
  let exact = false;
  if (small <= (options.exactBelow ?? 128) || sketch >= small) {
    svd = truncateSvd(denseSvd(m), rank);
    exact = true;
  } else {
    svd = truncateSvd(rangeFinderSvd(m, sketch, options.powerIterations ?? 4, options.random), rank);
  }
  return { ...svd, relativeError: relativeResidual(m, svd), exact };
}

// Products with the big matrix keep their inner loops on its contiguous rows: M·Ω as dot products with
// the rows of Ωᵀ, and Mᵀ·Q as (Qᵀ·M)ᵀ.
function rangeFinderSvd(
  m: DenseMatrix,
  sketch: number,
  powerIterations: number,
  random: RandomStream,
): SvdResult {
  const omegaT = zeros(sketch, m.cols);
  for (let i = 0; i < omegaT.data.length; i++) omegaT.data[i] = gaussian(random);
  let q = householderQr(matmulTransposeB(m, omegaT)).q; // out×l
  for (let it = 0; it < powerIterations; it++) {
    const z = householderQr(transpose(matmulTransposeA(q, m))).q; // in×l
    q = householderQr(matmulTransposeB(m, transpose(z))).q; // out×l
  }
  const projected = matmulTransposeA(q, m); // l×in
  const svd = denseSvd(projected);
  return { u: matmul(q, svd.u), s: svd.s, v: svd.v };
}

/** ‖M − U·diag(S)·Vᵀ‖_F / ‖M‖_F computed row by row. */
export function relativeResidual(m: DenseMatrix, svd: SvdResult): number {
  const total = frobeniusNorm(m.data);
  if (total === 0) return 0;
  const rank = svd.s.length;
  const vt = transpose(svd.v); // rank×in
  let residual = 0;
  const row = new Float64Array(m.cols);
  for (let i = 0; i < m.rows; i++) {
    row.set(m.data.subarray(i * m.cols, (i + 1) * m.cols));
    for (let j = 0; j < rank; j++) {
      const coef = svd.u.data[i * rank + j] * svd.s[j];
      if (coef === 0) continue;
      const base = j * m.cols;
      for (let c = 0; c < m.cols; c++) row[c] -= coef * vt.data[base + c];
    }
    for (let c = 0; c < m.cols; c++) residual += row[c] * row[c];
  }
  return Math.sqrt(residual) / total;
}
