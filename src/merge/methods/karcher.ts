// mergekit `karcher` (karcher_merge_tensors): the Karcher (Riemannian) mean of the inputs' directions on
// the unit sphere, scaled by their mean norm. Every input, the base included, gets weight 1/N.
import type { TensorMergeMethod } from '../method.ts';

export interface KarcherResult {
  data: Float32Array;
  /** How many times the Riemannian loop body ran (it may stop inside the last one). */
  iterations: number;
}

export function karcherMean(tensors: readonly Float32Array[], maxIter: number, tol: number): KarcherResult {
  if (tensors.length === 1) return { data: Float32Array.from(tensors[0]), iterations: 0 };
  const n = tensors[0].length;
  const alphas = tensors.map(() => 1 / tensors.length);
  const norms = tensors.map((x) => {
    let sum = 0;
    for (let i = 0; i < n; i++) sum += x[i] * x[i];
    return Math.sqrt(sum);
  });
  const valid = norms.map((norm, i) => (norm > tol ? i : -1)).filter((i) => i >= 0);
  if (valid.length === 0) return { data: new Float32Array(n), iterations: 0 };
  const alphaSum = valid.reduce((acc, i) => acc + alphas[i], 0);
  const weights = valid.map((i) => alphas[i] / alphaSum);
  const units = valid.map((i) => ({ x: tensors[i], scale: 1 / norms[i] }));

  // The iterate and the tangent are stored in float32 (as upstream); every sum is float64.
  const u = new Float32Array(n);
  units.forEach(({ x, scale }, j) => {
    for (let i = 0; i < n; i++) u[i] += weights[j] * x[i] * scale;
  });
  const uNorm = norm64(u);
  if (uNorm < tol) {
    const first = units[0];
    for (let i = 0; i < n; i++) u[i] = first.x[i] * first.scale;
  } else {
    for (let i = 0; i < n; i++) u[i] /= uNorm;
  }

  let iterations = 0;
  const tangent = new Float32Array(n);
  for (let iter = 0; iter < maxIter; iter++) {
    iterations++;
    tangent.fill(0);
    units.forEach(({ x, scale }, j) => {
      let d = 0;
      for (let i = 0; i < n; i++) d += u[i] * x[i] * scale;
      const dot = Math.min(1, Math.max(-1, d));
      const theta = Math.acos(dot);
      if (theta < tol) return;
      const coef = (weights[j] * theta) / Math.sin(theta);
      for (let i = 0; i < n; i++) tangent[i] += coef * (x[i] * scale - dot * u[i]);
    });
    const tNorm = norm64(tangent);
    if (tNorm < tol) break;
    const c = Math.cos(tNorm);
    const s = Math.sin(tNorm) / tNorm;
    for (let i = 0; i < n; i++) u[i] = c * u[i] + s * tangent[i];
    const nextNorm = norm64(u);
    if (nextNorm > tol) for (let i = 0; i < n; i++) u[i] /= nextNorm;
  }
  // The scale uses every input's alpha and norm, zero-norm inputs included (as upstream).
  const scale = alphas.reduce((acc, alpha, i) => acc + alpha * norms[i], 0);
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = scale * u[i];
  return { data: out, iterations };
}

function norm64(values: Float32Array): number {
  let sum = 0;
  for (let i = 0; i < values.length; i++) sum += values[i] * values[i];
  return Math.sqrt(sum);
}

export const karcher: TensorMergeMethod = {
  kind: 'tensor',
  name: 'karcher',
  description: 'Karcher (Riemannian) mean of the inputs on the unit sphere, scaled by their mean norm.',
  paper: 'https://en.wikipedia.org/wiki/Karcher_mean',
  baseModel: 'optional',
  random: false,
  minModels: 1,
  parameters: [
    {
      name: 'max_iter',
      scope: 'global',
      type: 'integer',
      default: 10,
      required: false,
      range: { min: 1 },
      description: 'Maximum number of Riemannian gradient steps.',
    },
    {
      name: 'tol',
      scope: 'global',
      type: 'number',
      default: 1e-5,
      required: false,
      range: { min: 0, minExclusive: true },
      description:
        'Convergence tolerance on the tangent norm (also the angle below which an input is skipped).',
    },
  ],
  notes:
    'As in mergekit, per-model weights are ignored (every input gets 1/N) and a base model is averaged like any ' +
    'other input. Norms, dots and the iterate are kept in float64 (mergekit: float32).',
  mergeTensor(ctx) {
    const maxIter = Number(ctx.params.max_iter ?? 10);
    const tol = Number(ctx.params.tol ?? 1e-5);
    return karcherMean(
      ctx.inputs.map((input) => input.data),
      maxIter,
      tol,
    ).data;
  },
};
