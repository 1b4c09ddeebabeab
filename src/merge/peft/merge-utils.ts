// PEFT's merge_utils (task_arithmetic, magnitude_prune, ties) over flat float32 tensors with float64
// sums: prune each tensor to its int(density·numel) largest |values|, elect a sign on the UNWEIGHTED
// pruned tensors ("total" = sum of values, "frequency" = sum of signs), and divide by the COUNT of
// agreeing entries.
import { markByMagnitude } from '../kernels/magnitude-select.ts';

export type MajoritySignMethod = 'total' | 'frequency';

/** 1 where the entry survives magnitude pruning: the int(density·numel) largest |values|; density ≥ 1 keeps all. */
export function magnitudeMask(tensor: Float32Array, density: number): Uint8Array {
  if (!Number.isFinite(density) || density < 0)
    throw new RangeError(`density must be a number >= 0, got ${density}`);
  const mask = new Uint8Array(tensor.length);
  if (density >= 1) return mask.fill(1);
  markByMagnitude(tensor, Math.trunc(density * tensor.length), mask);
  return mask;
}

/** Σ wᵢ·tᵢ. */
export function weightedSum(tensors: readonly Float32Array[], weights: readonly number[]): Float64Array {
  const out = new Float64Array(tensors[0].length);
  tensors.forEach((t, j) => {
    const w = weights[j];
    for (let i = 0; i < out.length; i++) out[i] += w * t[i];
  });
  return out;
}

/** Σ wᵢ·prune(tᵢ): no election, no division. */
export function magnitudePruneMerge(
  tensors: readonly Float32Array[],
  weights: readonly number[],
  density: number,
): Float64Array {
  const out = new Float64Array(tensors[0].length);
  tensors.forEach((t, j) => {
    const mask = magnitudeMask(t, density);
    const w = weights[j];
    for (let i = 0; i < out.length; i++) if (mask[i] === 1) out[i] += w * t[i];
  });
  return out;
}

export function tiesMerge(
  tensors: readonly Float32Array[],
  weights: readonly number[],
  density: number,
  method: MajoritySignMethod,
): Float64Array {
  const masks = tensors.map((t) => magnitudeMask(t, density));
  const n = tensors[0].length;
  const count = tensors.length;
  const out = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    let vote = 0;
    for (let j = 0; j < count; j++) {
      if (masks[j][i] === 1) vote += method === 'frequency' ? Math.sign(tensors[j][i]) : tensors[j][i];
    }
    const majority = vote >= 0 ? 1 : -1;
    let sum = 0;
    let agreeing = 0;
    for (let j = 0; j < count; j++) {
      const x = masks[j][i] === 1 ? tensors[j][i] : 0;
      if (Math.sign(x) !== majority) continue; // pruned zeros never agree
      sum += weights[j] * x;
      agreeing++;
    }
    out[i] = sum / Math.max(agreeing, 1);
  }
  return out;
}
