// mergekit's GTATask: task vectors δᵢ = xᵢ − base, an optional sparsifier per model, weights, an
// optional sign consensus, normalisation, λ, + base. TIES, DARE, breadcrumbs and DELLA are
// configurations of this one routine (see methods/*.ts), with mergekit's per-method defaults.
import {
  type FusedGtaConfig,
  gtaSplits,
  mergeGtaEncoded,
  mergeGtaInRanges,
  runGtaPhase,
} from './fused-gta.ts';
import { scratchFloat32 } from './kernels/scratch.ts';
import type {
  ParameterRuleInput,
  ParameterRuleViolation,
  ParameterSpec,
  TensorMergeContext,
  TensorMergeMethod,
} from './method.ts';
import { isTrue } from './parameter-ranges.ts';
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
  /** No sparsifier and no consensus: the merge is Σ cᵢ·xᵢ (see TensorMergeMethod.linearInInputs). */
  linearInInputs?: boolean;
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
      range: { min: 0, minExclusive: true, max: 1 },
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
      range: { min: 0, max: 1 },
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
      // density ± epsilon must stay inside (0, 1), so epsilon < min(density, 1 − density) ≤ 0.5.
      range: { min: 0, max: 0.5, maxExclusive: true },
      description:
        'Half-width of the keep probabilities around density (by magnitude rank); density ± epsilon must lie inside (0, 1).',
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

/**
 * GTATask.execute over one tensor, in float32 with torch's order of operations (each product and sum
 * rounded). One fused pass per element after sparsification; task vectors are materialised only
 * when a sparsifier needs a whole one.
 */
export function mergeGeneralizedTaskArithmetic(config: GtaConfig, ctx: TensorMergeContext): Float32Array {
  const baseInput = ctx.inputs.find((input) => input.isBase);
  if (!baseInput) throw new Error(`${config.name} needs a base model`);
  const base = baseInput.data;
  const n = base.length;
  const models = ctx.inputs.map((input, index) => ({ input, index })).filter(({ input }) => !input.isBase);
  if (models.length === 0) return base.slice();
  const count = models.length;
  const weights = Float32Array.from(models, ({ input }) => Number(input.params.weight));

  // Arrays the executor lets us overwrite (each used by one input only): task vectors are computed in
  // place and the result goes into the base's array, so a large tensor needs no extra copies.
  const arrays = ctx.inputs.map((input) => input.data);
  const writable = ctx.inputsWritable === true && new Set(arrays).size === arrays.length;

  // With a sparsifier the sources are the sparsified task vectors; without one, the inputs themselves.
  const sparsified = config.sparsification !== undefined;
  const sources: Float32Array[] = models.map(({ input, index }, m) => {
    if (!sparsified) return input.data;
    const delta = writable ? input.data : scratchFloat32(m, n);
    const x = input.data;
    for (let i = 0; i < n; i++) delta[i] = x[i] - base[i];
    sparsifyTaskVector(config, ctx, delta, input.params, index);
    return delta;
  });

  const normalize = isTrue(ctx.params.normalize);
  const lambda = Number(ctx.params.lambda ?? 1);
  const applyLambda = lambda !== 1; // mergekit skips the multiply when λ == 1
  const lambda32 = Math.fround(lambda);
  // Safe in place: each element of the base is read before its slot is written.
  const out = writable ? base : new Float32Array(n);

  if (config.consensus) {
    const bySum = config.consensus === 'sum';
    for (let i = 0; i < n; i++) {
      const b = base[i];
      // One pass: the vote, and the sums of the positive and of the negative weighted deltas (each in
      // model order, as torch sums the masked ones). Zeros (pruned entries) match neither sign.
      let vote = 0;
      let positive = 0;
      let negative = 0;
      let positiveWeight = 0;
      let negativeWeight = 0;
      for (let m = 0; m < count; m++) {
        const d = sparsified ? sources[m][i] : Math.fround(sources[m][i] - b);
        const wd = Math.fround(weights[m] * d);
        if (wd > 0) {
          positive = Math.fround(positive + wd);
          positiveWeight = Math.fround(positiveWeight + weights[m]);
          vote = bySum ? Math.fround(vote + wd) : vote + 1;
        } else if (wd < 0) {
          negative = Math.fround(negative + wd);
          negativeWeight = Math.fround(negativeWeight + weights[m]);
          vote = bySum ? Math.fround(vote + wd) : vote - 1;
        }
      }
      // The majority sign is +1 where the vote is ≥ 0 (ties go to +1).
      let mixed = vote >= 0 ? positive : negative;
      const divisor = vote >= 0 ? positiveWeight : negativeWeight;
      if (normalize) mixed = Math.fround(mixed / (divisor === 0 ? 1 : divisor));
      if (applyLambda) mixed = Math.fround(mixed * lambda32);
      out[i] = b + mixed;
    }
    return out;
  }

  let weightSum = 0;
  for (let m = 0; m < count; m++) weightSum = Math.fround(weightSum + weights[m]);
  const divisor = Math.abs(weightSum) < 1e-8 ? 1 : weightSum;
  if (!sparsified) {
    // One pass per element over the raw inputs (task arithmetic): the same float32 roundings in the
    // same order as the model-by-model loops below, with a third of their memory traffic.
    for (let i = 0; i < n; i++) {
      const b = base[i];
      let mixed = Math.fround(weights[0] * Math.fround(sources[0][i] - b));
      for (let m = 1; m < count; m++)
        mixed = Math.fround(mixed + Math.fround(weights[m] * Math.fround(sources[m][i] - b)));
      if (normalize) mixed = Math.fround(mixed / divisor);
      if (applyLambda) mixed = Math.fround(mixed * lambda32);
      out[i] = b + mixed;
    }
    return out;
  }
  // Model by model over the whole tensor (tight loops), accumulating in a float32 array: each store
  // rounds, so the sum is torch's Σ in model order. The sparsified task vectors are ours (copies, or
  // inputs the executor lets us overwrite), so the first one is the accumulator.
  const acc = sources[0];
  for (let i = 0; i < n; i++) acc[i] = weights[0] * acc[i];
  for (let m = 1; m < count; m++) {
    const x = sources[m];
    const w = weights[m];
    for (let i = 0; i < n; i++) acc[i] += Math.fround(w * x[i]);
  }
  for (let i = 0; i < n; i++) {
    let mixed = acc[i];
    if (normalize) mixed = Math.fround(mixed / divisor);
    if (applyLambda) mixed = Math.fround(mixed * lambda32);
    out[i] = base[i] + mixed;
  }
  return out;
}

function fusable(
  sparsification: SparsificationMethod | undefined,
): sparsification is 'magnitude' | 'random' | undefined {
  return sparsification === undefined || sparsification === 'magnitude' || sparsification === 'random';
}

/**
 * What ranges alone cannot say: TIES's top-k must keep at least one entry of every tensor (mergekit
 * asserts in the worker), and DELLA's keep probabilities density ± epsilon must lie inside (0, 1).
 */
function checkGtaParameters(
  config: GtaConfig,
  input: ParameterRuleInput,
): ParameterRuleViolation | undefined {
  for (const { model, isBase, params } of input.models) {
    if (isBase) continue;
    const density = Number(params.density ?? 1);
    if (density >= 1) continue;
    if (config.sparsification === 'magnitude' && Math.trunc(density * input.numel) <= 0) {
      return {
        parameter: 'density',
        model,
        message: `density ${density} keeps no entry of a ${input.numel}-element tensor (${config.name} keeps int(density·numel) entries)`,
      };
    }
    if (config.sparsification === 'della_magprune') {
      const epsilon = Number(params.epsilon);
      if (density + epsilon >= 1 || density - epsilon <= 0) {
        return {
          parameter: 'epsilon',
          model,
          message: `epsilon ${epsilon} must keep density ± epsilon inside (0, 1) (density ${density})`,
        };
      }
    }
  }
  return undefined;
}

function gtaParameterRule(config: GtaConfig): string | undefined {
  if (config.sparsification === 'magnitude') return 'int(density·numel) ≥ 1 for every merged tensor';
  if (config.sparsification === 'della_magprune')
    return '0 < density − epsilon and density + epsilon < 1 when density < 1';
  return undefined;
}

/** A TensorMergeMethod for one GTA configuration. */
export function createGtaMethod(config: GtaConfig): TensorMergeMethod {
  const random = config.sparsification === 'random' || config.sparsification === 'della_magprune';
  const fused: FusedGtaConfig | undefined = fusable(config.sparsification)
    ? { name: config.name, sparsification: config.sparsification, consensus: config.consensus }
    : undefined;
  return {
    kind: 'tensor',
    name: config.name,
    description: config.description,
    paper: config.paper,
    notes: config.notes,
    baseModel: 'required',
    random,
    minModels: 1,
    linearInInputs: config.linearInInputs === true,
    parameters: gtaParameters(config),
    parameterRule: gtaParameterRule(config),
    checkParameters: (input) => checkGtaParameters(config, input),
    mergeTensor: (ctx) => mergeGeneralizedTaskArithmetic(config, ctx),
    // The blocked kernel covers no sparsifier, TIES's top-k and DARE's drop; the rank- and
    // outlier-based ones (DELLA, breadcrumbs) run unfused.
    mergeEncoded: fused ? (ctx) => mergeGtaEncoded(fused, ctx) : undefined,
    rangeSplit: fused
      ? {
          splits: (numel, params, perModel) => gtaSplits(fused, numel, params, perModel),
          runPhase: (ctx, phase) => runGtaPhase(fused, ctx, phase),
          mergeInRanges: mergeGtaInRanges,
        }
      : undefined,
  };
}
