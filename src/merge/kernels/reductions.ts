// Reductions accumulated in float64, so norms and dot products of long float32 vectors do not drift.

export function sumAbs(x: Float32Array): number {
  let sum = 0;
  for (let i = 0; i < x.length; i++) sum += Math.abs(x[i]);
  return sum;
}

export function dot(a: Float32Array, b: Float32Array): number {
  let sum = 0;
  for (let i = 0; i < a.length; i++) sum += a[i] * b[i];
  return sum;
}

export function l2Norm(x: Float32Array): number {
  return Math.sqrt(dot(x, x));
}

/** out[i] = scale · x[i] (float32 result), in place when out === x. */
export function scaleInto(out: Float32Array, x: Float32Array, scale: number): void {
  const s = Math.fround(scale);
  for (let i = 0; i < x.length; i++) out[i] = x[i] * s;
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
