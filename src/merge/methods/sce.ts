// mergekit `sce` (sce_merge, sce_mask, sce_weight): Select the highest-variance positions across the task
// vectors, Calculate per-model weights from their mean squares, Erase minority signs, then a weighted mean.
import { MergePlanError } from '../errors.ts';
import { markByMagnitude } from '../kernels/magnitude-select.ts';
import type { TensorMergeMethod } from '../method.ts';

export function sceMerge(
  base: Float32Array,
  models: readonly Float32Array[],
  selectTopk: number,
): Float32Array {
  const n = base.length;
  const count = models.length;
  const tvs = models.map((x) => {
    const d = new Float32Array(n); // float32 differences, as in torch
    for (let i = 0; i < n; i++) d[i] = x[i] - base[i];
    return d;
  });
  if (selectTopk < 1) {
    const mask = new Uint8Array(n);
    if (selectTopk > 0) {
      // Population variance across the models, stored as float32 like torch.var, then an exact top-k.
      const variance = new Float32Array(n);
      let nonzero = 0;
      for (let i = 0; i < n; i++) {
        let mean = 0;
        for (const d of tvs) mean += d[i];
        mean /= count;
        let v = 0;
        for (const d of tvs) v += (d[i] - mean) ** 2;
        variance[i] = v / count;
        if (variance[i] !== 0) nonzero++;
      }
      markByMagnitude(variance, Math.trunc(nonzero * selectTopk), mask);
    }
    for (const d of tvs) for (let i = 0; i < n; i++) if (mask[i] === 0) d[i] = 0;
  }
  const meanSquares = tvs.map((d) => {
    let sum = 0;
    for (let i = 0; i < n; i++) sum += d[i] * d[i];
    return sum / n;
  });
  const total = meanSquares.reduce((a, b) => a + b, 0);
  const weights =
    Math.abs(total) < 1e-6 ? meanSquares.map(() => 1 / count) : meanSquares.map((w) => w / total);
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    let sum = 0;
    for (const d of tvs) sum += d[i];
    const majority = sum >= 0 ? 1 : -1;
    let merged = 0;
    let divisor = 0;
    for (let j = 0; j < count; j++) {
      if (Math.sign(tvs[j][i]) !== majority) continue; // pruned zeros never match
      merged += tvs[j][i] * weights[j];
      divisor += weights[j];
    }
    out[i] = base[i] + Math.fround(merged / Math.max(divisor, 1e-6));
  }
  return out;
}

export const sce: TensorMergeMethod = {
  kind: 'tensor',
  name: 'sce',
  description:
    'SCE: keeps high-variance positions, weights models by their mean square, erases minority signs.',
  paper: 'https://arxiv.org/abs/2408.07990',
  baseModel: 'required',
  random: false,
  minModels: 1,
  parameters: [
    {
      name: 'select_topk',
      scope: 'global',
      type: 'number',
      default: 1,
      required: false,
      range: { min: 0, minExclusive: true, max: 1 },
      description: 'Fraction of the positions with non-zero variance across the task vectors to keep.',
    },
    {
      name: 'int8_mask',
      scope: 'global',
      type: 'boolean',
      default: false,
      required: false,
      description: 'Accepted for mergekit compatibility; no effect on the result.',
    },
  ],
  notes:
    "int8_mask only changes mergekit's mask dtype, so it is accepted and ignored. Variances, weights and the " +
    'weighted mean are float64 on float32 task vectors (mergekit: float32). Models are taken in recipe order; ' +
    "mergekit's easy_define takes them from a Python set, which only changes the float summation order.",
  mergeTensor(ctx) {
    const base = ctx.inputs.find((input) => input.isBase);
    const others = ctx.inputs.filter((input) => !input.isBase);
    if (!base)
      throw new MergePlanError('method_inputs', 'sce needs a base model', { tensor: ctx.tensorName });
    if (others.length === 0) return Float32Array.from(base.data);
    return sceMerge(
      base.data,
      others.map((input) => input.data),
      Number(ctx.params.select_topk ?? 1),
    );
  },
};
