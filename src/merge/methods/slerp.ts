// mergekit `slerp` (SlerpTask + slerp()): spherical interpolation from the base (t = 0) to the other
// model (t = 1) over the whole flattened tensor; lerp of the raw tensors when they are nearly colinear.
import { MergePlanError } from '../errors.ts';
import type { TensorMergeMethod } from '../method.ts';

const DOT_THRESHOLD = 0.9995;
const NORM_EPS = 1e-8;

/** slerp(t, v0, v1) with mergekit's branches: normalise only when ‖v‖ > 1e-8, no clamp on the dot. */
export function slerpVectors(t: number, v0: Float32Array, v1: Float32Array): Float32Array {
  const n = v0.length;
  let n0 = 0;
  let n1 = 0;
  let cross = 0;
  for (let i = 0; i < n; i++) {
    n0 += v0[i] * v0[i];
    n1 += v1[i] * v1[i];
    cross += v0[i] * v1[i];
  }
  n0 = Math.sqrt(n0);
  n1 = Math.sqrt(n1);
  const dot = cross / (n0 > NORM_EPS ? n0 : 1) / (n1 > NORM_EPS ? n1 : 1);
  const out = new Float32Array(n);
  if (Math.abs(dot) > DOT_THRESHOLD) {
    for (let i = 0; i < n; i++) out[i] = (1 - t) * v0[i] + t * v1[i];
    return out;
  }
  const theta = Math.acos(dot);
  const sinTheta = Math.sin(theta);
  const s0 = Math.sin(theta - theta * t) / sinTheta;
  const s1 = Math.sin(theta * t) / sinTheta;
  for (let i = 0; i < n; i++) out[i] = s0 * v0[i] + s1 * v1[i];
  return out;
}

export const slerp: TensorMergeMethod = {
  kind: 'tensor',
  name: 'slerp',
  description: 'Spherical linear interpolation between the base model (t = 0) and one other model (t = 1).',
  paper: 'https://doi.org/10.1145/325165.325242',
  baseModel: 'required',
  random: false,
  minModels: 1,
  maxModels: 1,
  parameters: [
    {
      name: 't',
      scope: 'global',
      type: 'number',
      required: true,
      range: { min: 0, max: 1 },
      description: 'Interpolation factor: 0 gives the base model, 1 the other model.',
    },
  ],
  notes:
    'Norms and the dot product are accumulated in float64 and the result is rounded to float32 once; ' +
    'mergekit computes in numpy float32 (differences below 3e-7 relative). As in mergekit the dot is not ' +
    'clamped and |dot| > 0.9995 falls back to a lerp of the unnormalised tensors.',
  mergeTensor(ctx) {
    if (ctx.inputs.length === 1) return Float32Array.from(ctx.inputs[0].data);
    const base = ctx.inputs.find((input) => input.isBase);
    const others = ctx.inputs.filter((input) => !input.isBase);
    if (!base || others.length !== 1) {
      throw new MergePlanError('method_inputs', 'slerp needs the base model and exactly one other model', {
        tensor: ctx.tensorName,
      });
    }
    return slerpVectors(Number(ctx.params.t), base.data, others[0].data);
  },
};
