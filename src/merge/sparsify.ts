// mergekit's sparsifiers (sparsify.py), in place on one task vector. Each builds a keep-mask and
// then applies it, rescaling to the original L1 norm when `rescale` (RescaleNorm.l1).
import { keepLargestMagnitudes, markByMagnitude } from './kernels/magnitude-select.ts';
import { sumAbs } from './kernels/reductions.ts';
import { scratchMask } from './kernels/scratch.ts';
import type { RandomStream } from './method.ts';

/** The one place lorafuse knowingly departs from mergekit's breadcrumbs (both variants show it). */
export const BREADCRUMBS_NOTES =
  'mergekit keeps indices[n_bot:-n_top] of the ascending |δ| order, which is empty when int(gamma·numel) = 0 ' +
  '(every tensor under 1/gamma elements, e.g. norms and biases, loses its whole task vector). lorafuse drops ' +
  'nothing at the top in that case, as the method intends. Set mergekit_compat: true to reproduce mergekit exactly.';

export type SparsificationMethod = 'magnitude' | 'random' | 'magnitude_outliers' | 'della_magprune';

// Below this norm mergekit returns the masked tensor unscaled (rescaled_masked_tensor's eps).
export const RESCALE_EPS = 1e-7;

/** delta ← delta·mask, times ‖delta‖₁/‖delta·mask‖₁ when rescaling (both norms in float64). */
export function applyMask(delta: Float32Array, mask: Uint8Array, rescale: boolean): void {
  const before = rescale ? sumAbs(delta) : 0;
  let after = 0;
  for (let i = 0; i < delta.length; i++) {
    if (mask[i] === 0) delta[i] = 0;
    else after += Math.abs(delta[i]);
  }
  if (!rescale || before < RESCALE_EPS || after < RESCALE_EPS) return;
  const scale = Math.fround(before / after);
  for (let i = 0; i < delta.length; i++) delta[i] *= scale;
}

/** TIES: keep the int(density·numel) largest |δ| (ties to the lower index). */
export function sparsifyMagnitude(delta: Float32Array, density: number, rescale: boolean): void {
  if (density >= 1) return;
  const k = Math.trunc(density * delta.length);
  if (k <= 0) {
    // mergekit asserts here ("not gonna zero out the whole tensor"); say which numbers did it.
    throw new Error(`density ${density} keeps no entry of a ${delta.length}-element tensor`);
  }
  const before = rescale ? sumAbs(delta) : 0;
  keepLargestMagnitudes(delta, k);
  if (!rescale) return;
  const after = sumAbs(delta);
  if (before < RESCALE_EPS || after < RESCALE_EPS) return;
  const scale = Math.fround(before / after);
  for (let i = 0; i < delta.length; i++) delta[i] *= scale;
}

/**
 * Breadcrumbs: drop the int(gamma·numel) largest and then the smallest |δ| so that int(density·numel)
 * remain. mergekit keeps `indices[n_bot:-n_top]`, which is empty when n_top = 0; with `compat` we
 * reproduce that (the whole task vector is dropped), otherwise n_top = 0 drops nothing at the top.
 */
export function sparsifyMagnitudeOutliers(
  delta: Float32Array,
  density: number,
  gamma: number,
  rescale: boolean,
  compat: boolean,
): void {
  if (density >= 1) return;
  const n = delta.length;
  const target = Math.trunc(density * n);
  let nTop = Math.trunc(gamma * n);
  let nBottom = n - target - nTop;
  if (nBottom < 0) {
    nTop += nBottom;
    nBottom = 0;
  }
  const mask = scratchMask(0, n);
  if (compat && nTop <= 0) {
    mask.fill(0);
    applyMask(delta, mask, rescale);
    return;
  }
  nTop = Math.max(0, nTop);
  // Ascending sort order (|δ|, index): the bottom is its head, the top its tail.
  const dropped = scratchMask(1, n).fill(0);
  markByMagnitude(delta, nBottom, dropped, { smallest: true, ties: 'lower-index' });
  markByMagnitude(delta, nTop, dropped, { ties: 'higher-index' });
  for (let i = 0; i < n; i++) mask[i] = dropped[i] ^ 1;
  applyMask(delta, mask, rescale);
}

/** DARE: keep each entry with probability density (Bernoulli). */
export function sparsifyBernoulli(
  delta: Float32Array,
  density: number,
  rescale: boolean,
  random: RandomStream,
): void {
  if (density >= 1) return;
  const n = delta.length;
  // The L1 norm before dropping is summed in the same pass (same order as sumAbs, so the same sum).
  let before = 0;
  let after = 0;
  // u/2^32 < p ⇔ u < p·2^32 exactly, so the bulk and the per-draw paths drop the same entries.
  const threshold = Math.fround(density) * 4294967296;
  if (random.fillUint32) {
    const chunk = new Uint32Array(Math.min(n, 65536));
    for (let start = 0; start < n; start += chunk.length) {
      const draws = chunk.subarray(0, Math.min(chunk.length, n - start));
      random.fillUint32(draws);
      for (let i = 0; i < draws.length; i++) {
        const magnitude = Math.abs(delta[start + i]);
        before += magnitude;
        if (draws[i] < threshold) after += magnitude;
        else delta[start + i] = 0;
      }
    }
  } else {
    if (rescale) before = sumAbs(delta);
    for (let i = 0; i < n; i++) {
      if (random.next() * 4294967296 < threshold) after += Math.abs(delta[i]);
      else delta[i] = 0;
    }
  }
  if (!rescale || before < RESCALE_EPS || after < RESCALE_EPS) return;
  const scale = Math.fround(before / after);
  for (let i = 0; i < n; i++) delta[i] *= scale;
}

/**
 * DELLA (MagPrune): within each row (a 1-D tensor is one row; an N-D tensor is [shape0, rest]),
 * the entry of ascending magnitude rank r of c gets keep probability
 * (density − ε) + 2ε·(r−1)/(c−1). A one-element row has no rank spread and keeps with p = density.
 */
export function sparsifyDella(
  delta: Float32Array,
  shape: readonly number[],
  density: number,
  epsilon: number,
  rescale: boolean,
  random: RandomStream,
): void {
  if (density >= 1) return;
  const n = delta.length;
  const mask = scratchMask(0, n);
  if (density <= 0) {
    mask.fill(0);
    applyMask(delta, mask, false);
    return;
  }
  if (density + epsilon >= 1 || density - epsilon <= 0) {
    throw new Error(`epsilon ${epsilon} must keep density ± epsilon inside (0, 1) (density ${density})`);
  }
  const rows = shape.length < 2 ? 1 : shape[0];
  const cols = rows === 0 ? 0 : n / rows;
  const bits = new Uint32Array(delta.buffer, delta.byteOffset, n);
  // Sort key = |x| bits · 2^21 + column: exact in a double for rows up to 2^21 columns, and a stable
  // rank (ties to the lower column). Wider rows fall back to a comparator sort.
  const keys = new Float64Array(cols);
  const wide = cols > 1 << 21;
  const probability = new Float32Array(cols);
  const base = Math.fround(density - epsilon);
  const spread = Math.fround(2 * epsilon);
  for (let r = 0; r < rows; r++) {
    const offset = r * cols;
    if (cols === 1) {
      mask[offset] = random.next() < Math.fround(density) ? 1 : 0;
      continue;
    }
    let order: ArrayLike<number>;
    if (!wide) {
      for (let c = 0; c < cols; c++) keys[c] = (bits[offset + c] & 0x7fffffff) * 2097152 + c;
      keys.sort();
      order = keys;
    } else {
      const idx = Array.from({ length: cols }, (_, c) => c);
      idx.sort((x, y) => Math.abs(delta[offset + x]) - Math.abs(delta[offset + y]) || x - y);
      order = idx;
    }
    // Draws in column order, so the stream does not depend on the sort.
    for (let rank = 0; rank < cols; rank++) {
      const c = wide ? order[rank] : order[rank] % 2097152;
      probability[c] = base + Math.fround(rank / (cols - 1)) * spread;
    }
    for (let c = 0; c < cols; c++) mask[offset + c] = random.next() < probability[c] ? 1 : 0;
  }
  applyMask(delta, mask, rescale);
}
