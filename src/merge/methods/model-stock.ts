// mergekit `model_stock` (ModelStockMergeTask): t = N·cos/(1+(N−1)·cos) from the mean pairwise cosine of
// the task vectors, then t·mean(xᵢ) + (1−t)·base; per tensor, or per row with `filter_wise`.
import { MergePlanError } from '../errors.ts';
import { flatLayout, lastAxisLayout } from '../linalg/vector-layout.ts';
import type { TensorMergeMethod } from '../method.ts';
import { isTrue } from '../parameter-ranges.ts';

export interface ModelStockResult {
  data: Float32Array;
  /** One cos θ and one t per vector (one vector unless filter_wise). */
  cosTheta: number[];
  t: number[];
}

export function modelStock(
  base: Float32Array,
  models: readonly Float32Array[],
  shape: readonly number[],
  filterWise: boolean,
): ModelStockResult {
  const n = base.length;
  const layout = filterWise ? lastAxisLayout(shape, n) : flatLayout(n);
  const count = models.length;
  const offsets = models.map((x) => {
    const d = new Float32Array(n); // float32 differences, as in torch
    for (let i = 0; i < n; i++) d[i] = x[i] - base[i];
    return d;
  });
  const out = new Float32Array(n);
  const cosTheta: number[] = [];
  const ts: number[] = [];
  for (let v = 0; v < layout.count; v++) {
    const start = layout.offset(v);
    const end = start + layout.length;
    const norms = offsets.map((d) => {
      let sum = 0;
      for (let i = start; i < end; i++) sum += d[i] * d[i];
      return Math.sqrt(sum);
    });
    let cosSum = 0;
    let pairs = 0;
    for (let a = 0; a < count; a++) {
      for (let b = a + 1; b < count; b++) {
        let dot = 0;
        for (let i = start; i < end; i++) dot += offsets[a][i] * offsets[b][i];
        const cos = dot / Math.max(norms[a] * norms[b], 1e-6);
        cosSum += Math.min(1, Math.max(-1, cos));
        pairs++;
      }
    }
    const cos = cosSum / pairs;
    // Not clamped, and 1+(N−1)·cos = 0 is not guarded: mergekit does neither.
    const t = (count * cos) / (1 + (count - 1) * cos);
    cosTheta.push(cos);
    ts.push(t);
    for (let i = start; i < end; i++) {
      let avg = 0;
      for (const x of models) avg += x[i];
      avg /= count;
      out[i] = t * avg + (1 - t) * base[i];
    }
  }
  return { data: out, cosTheta, t: ts };
}

export const modelStockMethod: TensorMergeMethod = {
  kind: 'tensor',
  name: 'model_stock',
  description:
    'Model Stock: interpolates the average of the models towards the base by their task vectors’ angle.',
  paper: 'https://arxiv.org/abs/2403.19522',
  baseModel: 'required',
  random: false,
  minModels: 2,
  parameters: [
    {
      name: 'filter_wise',
      scope: 'global',
      type: 'boolean',
      default: false,
      required: false,
      description: 'One angle and one t per row (last axis) instead of per tensor; a 1-D tensor is one row.',
    },
  ],
  notes:
    'As in mergekit, t is not clamped (it can be negative) and 1+(N−1)·cos = 0 is not guarded. Norms and dots ' +
    'are float64 (mergekit: float32).',
  mergeTensor(ctx) {
    const base = ctx.inputs.find((input) => input.isBase);
    const others = ctx.inputs.filter((input) => !input.isBase);
    if (base && others.length === 0) return Float32Array.from(base.data);
    if (!base || others.length < 2) {
      throw new MergePlanError(
        'method_inputs',
        'model_stock needs the base model and at least two other models',
        {
          tensor: ctx.tensorName,
        },
      );
    }
    return modelStock(
      base.data,
      others.map((input) => input.data),
      ctx.shape,
      isTrue(ctx.params.filter_wise),
    ).data;
  },
};
