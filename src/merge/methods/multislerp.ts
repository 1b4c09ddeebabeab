// mergekit `multislerp` (multislerp()): barycentric interpolation on the hypersphere of the (task)
// vectors: weighted mean direction, tangent projection, exponential map, scaled by Σ wᵢ‖vᵢ‖.
import { MergePlanError } from '../errors.ts';
import type { ParameterValue, TensorMergeMethod } from '../method.ts';

const isTrue = (value: ParameterValue | undefined) => value === true || value === 1 || value === 'true';

export function multislerpVectors(
  vectors: readonly Float64Array[],
  weightsIn: readonly number[],
  normalizeWeights: boolean,
  eps: number,
): Float64Array {
  const n = vectors[0].length;
  const count = vectors.length;
  const weightSum = weightsIn.reduce((a, b) => a + b, 0);
  const weights = normalizeWeights ? weightsIn.map((w) => w / weightSum) : [...weightsIn];
  const norms = vectors.map((v) => {
    let sum = 0;
    for (let i = 0; i < n; i++) sum += v[i] * v[i];
    return Math.sqrt(sum);
  });
  const unitScale = norms.map((norm) => 1 / (norm + eps));
  const mean = new Float64Array(n);
  for (let j = 0; j < count; j++) {
    const c = weights[j] * unitScale[j];
    const v = vectors[j];
    for (let i = 0; i < n; i++) mean[i] += c * v[i];
  }
  let meanNorm = 0;
  for (let i = 0; i < n; i++) meanNorm += mean[i] * mean[i];
  meanNorm = Math.sqrt(meanNorm);
  if (meanNorm < eps) {
    if (count === 2) {
      const res = new Float64Array(n);
      for (let i = 0; i < n; i++) res[i] = vectors[0][i] * weights[0] + vectors[1][i] * weights[1];
      return res;
    }
    throw new RangeError('multislerp: the weighted sum of the unit vectors is zero (antipodal inputs)');
  }
  for (let i = 0; i < n; i++) mean[i] /= meanNorm;
  const dots = vectors.map((v, j) => {
    let d = 0;
    for (let i = 0; i < n; i++) d += v[i] * unitScale[j] * mean[i];
    return d;
  });
  const tangent = new Float64Array(n);
  for (let j = 0; j < count; j++) {
    const v = vectors[j];
    for (let i = 0; i < n; i++) tangent[i] += weights[j] * (v[i] * unitScale[j] - dots[j] * mean[i]);
  }
  let tangentNorm = 0;
  for (let i = 0; i < n; i++) tangentNorm += tangent[i] * tangent[i];
  tangentNorm = Math.sqrt(tangentNorm) + eps;
  const avgNorm = norms.reduce((acc, norm, j) => acc + norm * weights[j], 0);
  const c = Math.cos(tangentNorm);
  const s = Math.sin(tangentNorm) / tangentNorm;
  const result = new Float64Array(n);
  for (let i = 0; i < n; i++) result[i] = (mean[i] * c + tangent[i] * s) * avgNorm;
  return result;
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
      description: 'Small constant added to norms for numerical stability.',
    },
  ],
  notes: 'Norms, dots and the interpolation are computed in float64 (mergekit: float32).',
  mergeTensor(ctx) {
    const base = ctx.inputs.find((input) => input.isBase);
    const others = ctx.inputs.filter((input) => !input.isBase);
    if (others.length === 0) {
      throw new MergePlanError('method_inputs', 'multislerp needs at least one model besides the base', {
        tensor: ctx.tensorName,
      });
    }
    if (others.length === 1) return Float32Array.from(others[0].data);
    const n = others[0].data.length;
    const b = base?.data;
    const vectors = others.map(({ data }) => {
      const v = new Float64Array(n);
      for (let i = 0; i < n; i++) v[i] = b ? Math.fround(data[i] - b[i]) : data[i];
      return v;
    });
    const result = multislerpVectors(
      vectors,
      others.map((input) => Number(input.params.weight)),
      isTrue(ctx.params.normalize_weights ?? true),
      Number(ctx.params.eps ?? 1e-8),
    );
    const out = new Float32Array(n);
    for (let i = 0; i < n; i++) out[i] = b ? Math.fround(result[i]) + b[i] : result[i];
    return out;
  },
};
