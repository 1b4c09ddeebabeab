// PEFT's merge_utils (task_arithmetic, magnitude_prune, ties) over flat float64 tensors: prune each
// tensor to its int(density·numel) largest |values|, elect a sign on the UNWEIGHTED pruned tensors
// ("total" = sum of values, "frequency" = sum of signs), and divide by the COUNT of agreeing entries.

export type MajoritySignMethod = 'total' | 'frequency';

/** Keeps the int(density·numel) largest |values| (ties broken by lower index); density ≥ 1 keeps all. */
export function magnitudePrune(tensor: Float64Array, density: number): Float64Array {
  if (density >= 1) return tensor;
  if (density < 0) throw new RangeError(`density must be >= 0, got ${density}`);
  const k = Math.trunc(density * tensor.length);
  const out = new Float64Array(tensor.length);
  if (k === 0) return out;
  const order = new Int32Array(tensor.length);
  for (let i = 0; i < order.length; i++) order[i] = i;
  order.sort((a, b) => Math.abs(tensor[b]) - Math.abs(tensor[a]) || a - b);
  for (let j = 0; j < k; j++) out[order[j]] = tensor[order[j]];
  return out;
}

/** Σ wᵢ·tᵢ. */
export function weightedSum(tensors: readonly Float64Array[], weights: readonly number[]): Float64Array {
  const out = new Float64Array(tensors[0].length);
  tensors.forEach((t, j) => {
    const w = weights[j];
    for (let i = 0; i < out.length; i++) out[i] += w * t[i];
  });
  return out;
}

export function magnitudePruneMerge(
  tensors: readonly Float64Array[],
  weights: readonly number[],
  density: number,
): Float64Array {
  return weightedSum(
    tensors.map((t) => magnitudePrune(t, density)),
    weights,
  );
}

export function tiesMerge(
  tensors: readonly Float64Array[],
  weights: readonly number[],
  density: number,
  method: MajoritySignMethod,
): Float64Array {
  const pruned = tensors.map((t) => magnitudePrune(t, density));
  const n = pruned[0].length;
  const out = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    let vote = 0;
    for (const t of pruned) vote += method === 'frequency' ? Math.sign(t[i]) : t[i];
    const majority = vote >= 0 ? 1 : -1;
    let sum = 0;
    let count = 0;
    pruned.forEach((t, j) => {
      if (Math.sign(t[i]) !== majority) return; // pruned zeros never agree
      sum += weights[j] * t[i];
      count++;
    });
    out[i] = sum / Math.max(count, 1);
  }
  return out;
}
