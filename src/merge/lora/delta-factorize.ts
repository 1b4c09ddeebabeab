// Re-factoring a merged LoRA delta into an adapter of rank R with the scaling folded in (B = U·S,
// A = Vᵀ, new lora_alpha = R): exactly from stacked thin factors when the merge is linear, else by a
// (seeded, randomized when large) truncated SVD of the dense merged delta.
import { type DenseMatrix, fromArray, matmulInto } from '../linalg/dense.ts';
import { productSvd, svdToLoraFactors, truncateSvd } from '../linalg/low-rank-svd.ts';
import { truncatedSvd } from '../linalg/randomized-svd.ts';
import type { LoraModuleInput, RandomStream } from '../method.ts';

export interface Refactored {
  a: Float32Array;
  b: Float32Array;
  rank: number;
  relativeError: number;
}

/** Thin factors of Σ cᵢ·sᵢ·Bᵢ·Aᵢ: B = [c₀s₀B₀ | c₁s₁B₁ | …] (out×Σr), A = [A₀; A₁; …] (Σr×in). */
export function stackedFactors(
  adapters: readonly LoraModuleInput[],
  coefs: readonly number[],
): { b: DenseMatrix; a: DenseMatrix } {
  const { outFeatures: out, inFeatures: inF } = adapters[0];
  const total = adapters.reduce((acc, adapter) => acc + adapter.rank, 0);
  const b = fromArray(out, total, new Float64Array(out * total));
  const a = fromArray(total, inF, new Float64Array(total * inF));
  let col = 0;
  adapters.forEach((adapter, j) => {
    const coef = coefs[j] * adapter.scaling;
    for (let o = 0; o < out; o++) {
      for (let r = 0; r < adapter.rank; r++)
        b.data[o * total + col + r] = coef * adapter.b[o * adapter.rank + r];
    }
    a.data.set(adapter.a, col * inF);
    col += adapter.rank;
  });
  return { b, a };
}

/** Σ cᵢ·sᵢ·Bᵢ·Aᵢ at rank Σrᵢ without any SVD: A rows cᵢ·sᵢ·Aᵢ, B columns Bᵢ (like PEFT's cat). */
export function concatenatedFactors(
  adapters: readonly LoraModuleInput[],
  coefs: readonly number[],
): Refactored {
  const { outFeatures: out, inFeatures: inF } = adapters[0];
  const rank = adapters.reduce((acc, adapter) => acc + adapter.rank, 0);
  const a = new Float32Array(rank * inF);
  const b = new Float32Array(out * rank);
  let row = 0;
  adapters.forEach((adapter, j) => {
    const coef = coefs[j] * adapter.scaling;
    for (let r = 0; r < adapter.rank; r++) {
      for (let i = 0; i < inF; i++) a[(row + r) * inF + i] = coef * adapter.a[r * inF + i];
      for (let o = 0; o < out; o++) b[o * rank + row + r] = adapter.b[o * adapter.rank + r];
    }
    row += adapter.rank;
  });
  return { a, b, rank, relativeError: 0 };
}

/** Rank-R factors of B·A via the SVD of the small core; the error comes from the discarded singular values. */
export function refactorProduct(b: DenseMatrix, a: DenseMatrix, rank: number): Refactored {
  const full = productSvd(b, a);
  let total = 0;
  let tail = 0;
  full.s.forEach((sigma, j) => {
    total += sigma * sigma;
    if (j >= rank) tail += sigma * sigma;
  });
  const factors = svdToLoraFactors(truncateSvd(full, rank));
  return { ...factors, relativeError: total === 0 ? 0 : Math.sqrt(tail / total) };
}

/** Rank-R factors of a dense [out, in] delta; relativeError is measured against the delta itself. */
export function refactorDense(
  delta: Float32Array,
  out: number,
  inFeatures: number,
  rank: number,
  random: RandomStream,
): Refactored {
  const svd = truncatedSvd({ rows: out, cols: inFeatures, data: Float64Array.from(delta) }, rank, { random });
  return { ...svdToLoraFactors(svd), relativeError: svd.relativeError };
}

/** Σ cᵢ·sᵢ·Bᵢ·Aᵢ as a dense float32 [out, in] matrix (float64 sums). */
export function denseLinearDelta(
  adapters: readonly LoraModuleInput[],
  coefs: readonly number[],
): Float32Array {
  const { b, a } = stackedFactors(adapters, coefs);
  const acc = new Float64Array(b.rows * a.cols);
  matmulInto(acc, b.data, b.rows, b.cols, a.data, a.cols);
  return Float32Array.from(acc);
}

/** sᵢ·Bᵢ·Aᵢ as float32 [out, in]. */
export function adapterDelta(adapter: LoraModuleInput): Float32Array {
  return denseLinearDelta([adapter], [1]);
}
