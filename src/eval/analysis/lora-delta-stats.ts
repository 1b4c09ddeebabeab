// Statistics of LoRA deltas ΔW = s·B·A computed from the thin factors, never from a dense out×in matrix:
// Frobenius inner products <s₁B₁A₁, s₂B₂A₂> = s₁s₂·Σ (B₁ᵀB₂) ⊙ (A₁A₂ᵀ) (r₁×r₂ work per module), and the
// singular values of s·B·A through QR of the factors (productSvd), whose entropy gives the effective rank.
import { type DenseMatrix, fromArray } from '../../merge/linalg/dense.ts';
import { productSvd } from '../../merge/linalg/low-rank-svd.ts';

/** One module's delta as thin factors: ΔW = scale · b · a, b [out, R], a [R, in] (float64). */
export interface DeltaFactors {
  module: string;
  scale: number;
  b: DenseMatrix;
  a: DenseMatrix;
  /** The LoRA rank the adapter declares for this module (R can be larger for L-LoRA expansions). */
  rank: number;
}

export function factorsFrom(
  module: string,
  scale: number,
  rank: number,
  b: { shape: number[]; data: ArrayLike<number> },
  a: { shape: number[]; data: ArrayLike<number> },
): DeltaFactors {
  return {
    module,
    scale,
    rank,
    b: fromArray(b.shape[0], b.shape[1], b.data),
    a: fromArray(a.shape[0], a.shape[1], a.data),
  };
}

/** Frobenius inner product <ΔW_x, ΔW_y> of two deltas of the same module, from their factors. */
export function deltaInner(x: DeltaFactors, y: DeltaFactors): number {
  if (x.b.rows !== y.b.rows || x.a.cols !== y.a.cols) {
    throw new RangeError(
      `${x.module}: deltas are ${x.b.rows}x${x.a.cols} and ${y.b.rows}x${y.a.cols}, not the same shape`,
    );
  }
  const rx = x.b.cols;
  const ry = y.b.cols;
  const out = x.b.rows;
  const inner = x.a.cols;
  let sum = 0;
  for (let p = 0; p < rx; p++) {
    for (let q = 0; q < ry; q++) {
      let bb = 0; // (BₓᵀB_y)[p,q]
      for (let o = 0; o < out; o++) bb += x.b.data[o * rx + p] * y.b.data[o * ry + q];
      if (bb === 0) continue;
      let aa = 0; // (AₓA_yᵀ)[p,q]
      const xa = p * inner;
      const ya = q * inner;
      for (let i = 0; i < inner; i++) aa += x.a.data[xa + i] * y.a.data[ya + i];
      sum += bb * aa;
    }
  }
  return x.scale * y.scale * sum;
}

/** Singular values of s·B·A (descending), exact up to float64 rounding, from QR of the thin factors. */
export function deltaSingularValues(f: DeltaFactors): Float64Array {
  const svd = productSvd(f.b, f.a);
  return svd.s.map((s) => Math.abs(f.scale) * s);
}

/**
 * Effective rank (Roy & Vetterli 2007): exp of the Shannon entropy of the singular values normalized to sum 1.
 * 1 for a rank-one delta, the rank for a delta with equal singular values, 0 for a zero delta.
 */
export function effectiveRank(singularValues: ArrayLike<number>): number {
  let total = 0;
  for (let i = 0; i < singularValues.length; i++) total += singularValues[i];
  if (total <= 0) return 0;
  let entropy = 0;
  for (let i = 0; i < singularValues.length; i++) {
    const p = singularValues[i] / total;
    if (p > 0) entropy -= p * Math.log(p);
  }
  return Math.exp(entropy);
}
