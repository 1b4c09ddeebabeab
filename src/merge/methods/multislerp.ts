// mergekit `multislerp` (multislerp()): barycentric interpolation on the hypersphere of the (task)
// vectors: weighted mean direction, tangent projection, exponential map, scaled by Σ wᵢ‖vᵢ‖.
import { MergePlanError } from '../errors.ts';
import type { TensorMergeMethod } from '../method.ts';
import { isTrue } from '../parameter-ranges.ts';

/**
 * multislerp of the task vectors vⱼ = xⱼ − base (or xⱼ without a base), evaluated from their Gram matrix
 * so that no vector-sized scratch is needed: with uⱼ = vⱼ/(‖vⱼ‖+eps), the mean is m = Σ wⱼuⱼ, its
 * direction m̂ = m/‖m‖, the tangent T = Σ wⱼ(uⱼ − (uⱼ·m̂)m̂), and the result
 * (Σ wⱼ‖vⱼ‖)·(cos(‖T‖+eps)·m̂ + T·sin(‖T‖+eps)/(‖T‖+eps)).
 */
export function multislerpVectors(
  models: readonly Float32Array[],
  base: Float32Array | undefined,
  weightsIn: readonly number[],
  normalizeWeights: boolean,
  eps: number,
): Float32Array {
  const n = models[0].length;
  const count = models.length;
  const weightSum = weightsIn.reduce((a, b) => a + b, 0);
  const weights = normalizeWeights ? weightsIn.map((w) => w / weightSum) : [...weightsIn];
  // Task vectors are float32 differences (as in torch), recomputed on the fly instead of stored.
  const tv = base
    ? (j: number, i: number) => Math.fround(models[j][i] - base[i])
    : (j: number, i: number) => models[j][i];
  const gram = Array.from({ length: count }, () => new Float64Array(count));
  const row = new Float64Array(count);
  for (let i = 0; i < n; i++) {
    for (let j = 0; j < count; j++) row[j] = tv(j, i);
    for (let j = 0; j < count; j++) for (let k = j; k < count; k++) gram[j][k] += row[j] * row[k];
  }
  for (let j = 0; j < count; j++) for (let k = 0; k < j; k++) gram[j][k] = gram[k][j];
  const norms = gram.map((g, j) => Math.sqrt(g[j]));
  const unitScale = norms.map((norm) => 1 / (norm + eps));
  // m = Σ cⱼvⱼ with cⱼ = wⱼ/(‖vⱼ‖+eps).
  const c = weights.map((w, j) => w * unitScale[j]);
  let meanNormSq = 0;
  for (let j = 0; j < count; j++) for (let k = 0; k < count; k++) meanNormSq += c[j] * c[k] * gram[j][k];
  const meanNorm = Math.sqrt(Math.max(0, meanNormSq));
  const out = new Float32Array(n);
  if (meanNorm < eps) {
    if (count !== 2)
      throw new RangeError('multislerp: the weighted sum of the unit vectors is zero (antipodal inputs)');
    for (let i = 0; i < n; i++) out[i] = tv(0, i) * weights[0] + tv(1, i) * weights[1] + (base ? base[i] : 0);
    return out;
  }
  // m̂ = Σ (cⱼ/‖m‖)vⱼ; uⱼ·m̂ = unitScaleⱼ·Σₖ (cₖ/‖m‖)·Gⱼₖ.
  const mhat = c.map((cj) => cj / meanNorm);
  const dots = gram.map((g, j) => unitScale[j] * g.reduce((acc, gjk, k) => acc + mhat[k] * gjk, 0));
  // T = Σⱼ aⱼvⱼ with aⱼ = wⱼ·unitScaleⱼ − (Σₖ wₖ·dotsₖ)·m̂ⱼ.
  const wDots = weights.reduce((acc, w, j) => acc + w * dots[j], 0);
  const a = weights.map((w, j) => w * unitScale[j] - wDots * mhat[j]);
  let tangentNormSq = 0;
  for (let i = 0; i < n; i++) {
    let t = 0;
    for (let j = 0; j < count; j++) t += a[j] * tv(j, i);
    tangentNormSq += t * t;
  }
  const tangentNorm = Math.sqrt(tangentNormSq) + eps;
  const avgNorm = norms.reduce((acc, norm, j) => acc + norm * weights[j], 0);
  const cosT = Math.cos(tangentNorm);
  const sinT = Math.sin(tangentNorm) / tangentNorm;
  const coef = mhat.map((mj, j) => avgNorm * (cosT * mj + sinT * a[j]));
  for (let i = 0; i < n; i++) {
    let r = 0;
    for (let j = 0; j < count; j++) r += coef[j] * tv(j, i);
    out[i] = base ? Math.fround(r) + base[i] : r;
  }
  return out;
}

export const multislerp: TensorMergeMethod = {
  kind: 'tensor',
  name: 'multislerp',
  description:
    'Barycentric spherical interpolation of any number of models (of their task vectors with a base).',
  paper: 'https://github.com/arcee-ai/mergekit/blob/main/docs/merge_methods.md#multi-slerp-multislerp',
  baseModel: 'optional',
  random: false,
  minModels: 1,
  parameters: [
    {
      name: 'weight',
      scope: 'per-model',
      type: 'number',
      required: true,
      description: 'Weight of this model.',
    },
    {
      name: 'normalize_weights',
      scope: 'global',
      type: 'boolean',
      default: true,
      required: false,
      description: 'Divide the weights by their sum.',
    },
    {
      name: 'eps',
      scope: 'global',
      type: 'number',
      default: 1e-8,
      required: false,
      range: { min: 0, minExclusive: true },
      description: 'Small constant added to norms for numerical stability.',
    },
  ],
  notes:
    'Norms, dots and the interpolation are computed in float64 from the Gram matrix of the task vectors ' +
    "(mergekit: float32, elementwise). Models are taken in recipe order; mergekit's easy_define takes them " +
    'from a Python set, which only changes the float summation order.',
  parameterRule: 'with normalize_weights, the weights must not sum to 0',
  checkParameters({ global, models }) {
    if (!isTrue(global.normalize_weights)) return undefined;
    const weightSum = models.filter((m) => !m.isBase).reduce((sum, m) => sum + Number(m.params.weight), 0);
    if (weightSum !== 0) return undefined;
    return {
      parameter: 'weight',
      message: 'the weights sum to 0, so normalize_weights would divide by zero',
    };
  },
  mergeTensor(ctx) {
    const base = ctx.inputs.find((input) => input.isBase);
    const others = ctx.inputs.filter((input) => !input.isBase);
    if (others.length === 0) {
      throw new MergePlanError('method_inputs', 'multislerp needs at least one model besides the base', {
        tensor: ctx.tensorName,
      });
    }
    if (others.length === 1) return Float32Array.from(others[0].data);
    return multislerpVectors(
      others.map((input) => input.data),
      base?.data,
      others.map((input) => Number(input.params.weight)),
      isTrue(ctx.params.normalize_weights ?? true),
      Number(ctx.params.eps ?? 1e-8),
    );
  },
};
