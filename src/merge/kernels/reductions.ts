// Reductions accumulated in float64, so norms and dot products of long float32 vectors do not drift.

export function sumAbs(x: Float32Array): number {
  let sum = 0;
  for (let i = 0; i < x.length; i++) sum += Math.abs(x[i]);
  return sum;
}

/** How many values are NaN or ±Inf (a finite sum proves there are none, so usually one pass). */
export function countNonFinite(data: Float32Array): number {
  let sum = 0;
  for (let i = 0; i < data.length; i++) sum += data[i];
  if (Number.isFinite(sum)) return 0;
  let count = 0;
  for (let i = 0; i < data.length; i++) if (!Number.isFinite(data[i])) count++;
  return count;
}
