// mergekit's GTATask: task vectors δᵢ = xᵢ − base, an optional sparsifier per model, weights, an
// optional sign consensus, normalisation, λ, + base. TIES, DARE, breadcrumbs and DELLA are
// configurations of this one routine (see methods/*.ts), with mergekit's per-method defaults.
import { scratchFloat32 } from './kernels/scratch.ts';
import type { ParameterSpec, TensorMergeContext, TensorMergeMethod } from './method.ts';
import { isTrue } from './parameters.ts';
import {
  type SparsificationMethod,
  sparsifyBernoulli,
  sparsifyDella,
  sparsifyMagnitude,
  sparsifyMagnitudeOutliers,
} from './sparsify.ts';

export type ConsensusMethod = 'sum' | 'count';

export interface GtaConfig {
  name: string;
  description: string;
  paper?: string;
  sparsification?: SparsificationMethod;
  consensus?: ConsensusMethod;
  defaultNormalize: boolean;
  defaultRescale: boolean;
  notes?: string;
}

function gtaParameters(config: GtaConfig): ParameterSpec[] {
  const specs: ParameterSpec[] = [
    {
      name: 'weight',
      scope: 'per-model',
      type: 'number',
      required: true,
      description: 'Weight of the task vector.',
    },
    {
      name: 'density',
      scope: 'per-model',
      type: 'number',
      default: 1,
      required: false,
      description: config.sparsification
        ? 'Fraction of the task vector kept.'
        : 'Accepted as in mergekit; no effect without a sparsifier.',
    },
  ];
  if (config.sparsification === 'magnitude_outliers') {
    specs.push({
      name: 'gamma',
      scope: 'per-model',
      type: 'number',
      default: 0.01,
      required: false,
      description: 'Fraction of the largest |δ| dropped as outliers.',
    });
  }
  if (config.sparsification === 'della_magprune') {
    specs.push({
      name: 'epsilon',
      scope: 'per-model',
      type: 'number',
      default: 0.15,
      required: false,
      description: 'Half-width of the keep probabilities around density (by magnitude rank).',
    });
  }
  specs.push(
    {
      name: 'normalize',
      scope: 'global',
      type: 'boolean',
      default: config.defaultNormalize,
      required: false,
      description: 'Divide the merged task vector by the sum of the (kept) weights.',
    },
    {
      name: 'rescale',
      scope: 'global',
      type: 'boolean',
      default: config.defaultRescale,
      required: false,
      description: 'After sparsifying, rescale each task vector to its original L1 norm.',
    },
    {
      name: 'lambda',
      scope: 'global',
      type: 'number',
      default: 1,
      required: false,
      description: 'Scale of the merged task vector, applied after normalisation.',
    },
    {
      name: 'int8_mask',
      scope: 'global',
      type: 'boolean',
      default: false,
      required: false,
      description: 'Accepted as in mergekit (a memory option there); no effect on the result.',
    },
  );
  if (config.sparsification === 'magnitude_outliers') {
    specs.push({
      name: 'mergekit_compat',
      scope: 'global',
      type: 'boolean',
      default: false,
      required: false,
      description: 'Reproduce mergekit exactly: drop the whole task vector when int(gamma·numel) = 0.',
    });
  }
  return specs;
}

function sparsifyTaskVector(
  config: GtaConfig,
  ctx: TensorMergeContext,
  delta: Float32Array,
  params: Readonly<Record<string, unknown>>,
  inputIndex: number,
): void {
  const density = Number(params.density ?? 1);
  const rescale = isTrue(ctx.params.rescale);
  switch (config.sparsification) {
    case 'magnitude':
      sparsifyMagnitude(delta, density, rescale);
      return;
    case 'random':
      sparsifyBernoulli(delta, density, rescale, ctx.random(`model:${inputIndex}`));
      return;
    case 'magnitude_outliers':
      sparsifyMagnitudeOutliers(
        delta,
        density,
        Number(params.gamma),
        rescale,
        isTrue(ctx.params.mergekit_compat),
      );
      return;
    case 'della_magprune':
      sparsifyDella(
        delta,
        ctx.shape,
        density,
        Number(params.epsilon),
        rescale,
        ctx.random(`model:${inputIndex}`),
      );
      return;
    default:
      return;
  }
}

/** GTATask.execute over one tensor. Float32 arithmetic in torch's order (each product and sum rounded). */
export function mergeGeneralizedTaskArithmetic(config: GtaConfig, ctx: TensorMergeContext): Float32Array {
  const baseInput = ctx.inputs.find((input) => input.isBase);
  if (!baseInput) throw new Error(`${config.name} needs a base model`);
  const base = baseInput.data;
  const n = base.length;
  const models = ctx.inputs.map((input, index) => ({ input, index })).filter(({ input }) => !input.isBase);
  if (models.length === 0) return base.slice();

  const deltas: Float32Array[] = [];
  const weights = new Float32Array(models.length);
  models.forEach(({ input, index }, m) => {
    const delta = scratchFloat32(m, n);
    const x = input.data;
    for (let i = 0; i < n; i++) delta[i] = x[i] - base[i];
    sparsifyTaskVector(config, ctx, delta, input.params, index);
    deltas.push(delta);
    weights[m] = Number(input.params.weight);
  });

  const mixed = new Float32Array(n);
  const count = models.length;
  if (config.consensus) {
    const divisor = scratchFloat32(count, n);
    const bySum = config.consensus === 'sum';
    for (let i = 0; i < n; i++) {
      // Majority sign of the weighted deltas (sum), or of their signs (count); ties go to +1.
      let vote = 0;
      for (let m = 0; m < count; m++) {
        const wd = Math.fround(weights[m] * deltas[m][i]);
        vote = bySum ? Math.fround(vote + wd) : vote + Math.sign(wd);
      }
      const majority = vote >= 0 ? 1 : -1;
      let sum = 0;
      let weightSum = 0;
      for (let m = 0; m < count; m++) {
        const wd = Math.fround(weights[m] * deltas[m][i]);
        // Zeros (pruned entries) have sign 0 and never match the majority.
        if (Math.sign(wd) === majority) {
          sum = Math.fround(sum + wd);
          weightSum = Math.fround(weightSum + weights[m]);
        }
      }
      mixed[i] = sum;
      divisor[i] = weightSum === 0 ? 1 : weightSum;
    }
    if (isTrue(ctx.params.normalize)) for (let i = 0; i < n; i++) mixed[i] = mixed[i] / divisor[i];
  } else {
    for (let m = 0; m < count; m++) {
      const w = weights[m];
      const delta = deltas[m];
      for (let i = 0; i < n; i++) mixed[i] = mixed[i] + Math.fround(w * delta[i]);
    }
    if (isTrue(ctx.params.normalize)) {
      let weightSum = 0;
      for (let m = 0; m < count; m++) weightSum = Math.fround(weightSum + weights[m]);
      const divisor = Math.abs(weightSum) < 1e-8 ? 1 : weightSum;
      for (let i = 0; i < n; i++) mixed[i] = mixed[i] / divisor;
    }
  }
  const lambda = Number(ctx.params.lambda ?? 1);
  if (lambda !== 1) {
    const scale = Math.fround(lambda);
    for (let i = 0; i < n; i++) mixed[i] = mixed[i] * scale;
  }
  for (let i = 0; i < n; i++) mixed[i] = base[i] + mixed[i];
  return mixed;
}

/** A TensorMergeMethod for one GTA configuration. */
export function createGtaMethod(config: GtaConfig): TensorMergeMethod {
  const random = config.sparsification === 'random' || config.sparsification === 'della_magprune';
  return {
    kind: 'tensor',
    name: config.name,
    description: config.description,
    paper: config.paper,
    notes: config.notes,
    baseModel: 'required',
    random,
    minModels: 1,
    parameters: gtaParameters(config),
    mergeTensor: (ctx) => mergeGeneralizedTaskArithmetic(config, ctx),
  };
}
