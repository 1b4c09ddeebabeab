// mergekit `nuslerp` (NuSlerpTask + nuslerp()): slerp between exactly two models at t = w₁/(w₀+w₁),
// of their task vectors when a base model is given; whole tensor, per row, or per column.
import { firstAxisLayout, flatLayout, lastAxisLayout, type VectorLayout } from '../linalg/vector-layout.ts';
import { MergePlanError } from '../errors.ts';
import type { TensorMergeMethod } from '../method.ts';
import { isTrue } from '../parameter-ranges.ts';

/** nuslerp(t, v0, v1) over each vector of `layout`: norms clamped to ≥ 1e-7, lerp where |sin θ| < 1e-8. */
export function nuslerpVectors(
  t: number,
  v0: Float32Array,
  v1: Float32Array,
  layout: VectorLayout,
): Float32Array {
  const out = new Float32Array(v0.length);
  const { length, stride } = layout;
  for (let v = 0; v < layout.count; v++) {
    const start = layout.offset(v);
    let n0 = 0;
    let n1 = 0;
    let cross = 0;
    for (let i = 0, k = start; i < length; i++, k += stride) {
      n0 += v0[k] * v0[k];
      n1 += v1[k] * v1[k];
      cross += v0[k] * v1[k];
    }
    const cos = cross / Math.max(Math.sqrt(n0), 1e-7) / Math.max(Math.sqrt(n1), 1e-7);
    const theta = Math.acos(Math.min(1, Math.max(-1, cos)));
    const sinTheta = Math.sin(theta);
    const colinear = Math.abs(sinTheta) < 1e-8;
    const s0 = colinear ? 1 - t : Math.sin((1 - t) * theta) / sinTheta;
    const s1 = colinear ? t : Math.sin(t * theta) / sinTheta;
    for (let i = 0, k = start; i < length; i++, k += stride) out[k] = s0 * v0[k] + s1 * v1[k];
  }
  return out;
}

function taskVector(x: Float32Array, base: Float32Array): Float32Array {
  const out = new Float32Array(x.length);
  for (let i = 0; i < x.length; i++) out[i] = x[i] - base[i];
  return out;
}

export const nuslerp: TensorMergeMethod = {
  kind: 'tensor',
  name: 'nuslerp',
  description:
    'Slerp between two models (or their task vectors from a base) at t = w₁/(w₀+w₁), by tensor, row or column.',
  paper: 'https://github.com/arcee-ai/mergekit/blob/main/docs/merge_methods.md#nuslerp',
  baseModel: 'optional',
  random: false,
  minModels: 2,
  maxModels: 2,
  parameters: [
    {
      name: 'weight',
      scope: 'per-model',
      type: 'number',
      required: true,
      description: 'Relative weight of this model; t = weight of the second model / sum of both.',
    },
    {
      name: 'nuslerp_flatten',
      scope: 'global',
      type: 'boolean',
      default: true,
      required: false,
      description: 'Treat the whole tensor as one vector.',
    },
    {
      name: 'nuslerp_row_wise',
      scope: 'global',
      type: 'boolean',
      default: false,
      required: false,
      description:
        'With nuslerp_flatten false: true slerps the columns W[:, j], false the rows W[i, :] (as mergekit code does).',
    },
  ],
  notes:
    "nuslerp_row_wise follows mergekit's code, not its docs: mergekit's docs say true slerps row vectors, but the " +
    'code maps true to dim 0 (transpose(0, -1)) and slerps columns, while the default false slerps rows. lorafuse ' +
    'does what the code does so that mergekit recipes give mergekit numbers. Norms and dots are float64.',
  mergeTensor(ctx) {
    if (ctx.inputs.length === 1) return Float32Array.from(ctx.inputs[0].data);
    const base = ctx.inputs.find((input) => input.isBase);
    const others = ctx.inputs.filter((input) => !input.isBase);
    if (others.length !== 2) {
      throw new MergePlanError('method_inputs', 'nuslerp merges exactly two models (plus an optional base)', {
        tensor: ctx.tensorName,
      });
    }
    const w0 = Number(others[0].params.weight);
    const w1 = Number(others[1].params.weight);
    const t = Math.abs(w0 + w1) < 1e-6 ? 0.5 : w1 / (w0 + w1);
    const n = others[0].data.length;
    const b = base?.data;
    // Task vectors are float32 differences, as in torch.
    const v0 = b ? taskVector(others[0].data, b) : others[0].data;
    const v1 = b ? taskVector(others[1].data, b) : others[1].data;
    const layout = isTrue(ctx.params.nuslerp_flatten ?? true)
      ? flatLayout(n)
      : isTrue(ctx.params.nuslerp_row_wise)
        ? firstAxisLayout(ctx.shape, n)
        : lastAxisLayout(ctx.shape, n);
    const out = nuslerpVectors(t, v0, v1, layout);
    if (b) for (let i = 0; i < n; i++) out[i] = b[i] + out[i];
    return out;
  },
};
