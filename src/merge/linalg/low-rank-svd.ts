// Truncated SVD of a low-rank product B·A (B: out×r, A: r×in) from its thin factors, without forming
// the dense out×in matrix: B = Q_B·R_B, Aᵀ = Q_A·R_A, so B·A = Q_B·(R_B·R_Aᵀ)·Q_Aᵀ and only the small
// core R_B·R_Aᵀ needs an SVD. Exact up to float64 rounding.
import { type DenseMatrix, matmul, transpose, zeros } from './dense.ts';
import { denseSvd, type SvdResult } from './jacobi-svd.ts';
import { householderQr } from './qr.ts';

/** The SVD of B·A, keeping at most `rank` triplets (all of them when rank is undefined). */
export function productSvd(b: DenseMatrix, a: DenseMatrix, rank?: number): SvdResult {
  if (b.cols !== a.rows)
    throw new RangeError(`productSvd: B is ${b.rows}x${b.cols}, A is ${a.rows}x${a.cols}`);
  const qrB = householderQr(b);
  const qrA = householderQr(transpose(a));
  const core = matmul(qrB.r, transpose(qrA.r));
  const svd = denseSvd(core);
  const u = matmul(qrB.q, svd.u);
  const v = matmul(qrA.q, svd.v);
  return truncateSvd({ u, s: svd.s, v }, rank ?? svd.s.length);
}

/** Keeps the first `rank` triplets; pads with zero triplets when fewer exist. */
export function truncateSvd(svd: SvdResult, rank: number): SvdResult {
  const have = svd.s.length;
  const u = zeros(svd.u.rows, rank);
  const v = zeros(svd.v.rows, rank);
  const s = new Float64Array(rank);
  const keep = Math.min(rank, have);
  for (let j = 0; j < keep; j++) s[j] = svd.s[j];
  for (let i = 0; i < svd.u.rows; i++) {
    for (let j = 0; j < keep; j++) u.data[i * rank + j] = svd.u.data[i * have + j];
  }
  for (let i = 0; i < svd.v.rows; i++) {
    for (let j = 0; j < keep; j++) v.data[i * rank + j] = svd.v.data[i * have + j];
  }
  return { u, s, v };
}

/** LoRA factors of a truncated SVD with the singular values folded into B: B = U·S (out×r), A = Vᵀ (r×in). */
export function svdToLoraFactors(svd: SvdResult): { b: Float32Array; a: Float32Array; rank: number } {
  const rank = svd.s.length;
  const out = svd.u.rows;
  const inFeatures = svd.v.rows;
  const b = new Float32Array(out * rank);
  const a = new Float32Array(rank * inFeatures);
  for (let i = 0; i < out; i++) {
    for (let j = 0; j < rank; j++) b[i * rank + j] = svd.u.data[i * rank + j] * svd.s[j];
  }
  for (let j = 0; j < rank; j++) {
    for (let i = 0; i < inFeatures; i++) a[j * inFeatures + i] = svd.v.data[i * rank + j];
  }
  return { b, a, rank };
}
