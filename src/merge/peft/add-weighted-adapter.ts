// PEFT's LoraModel.add_weighted_adapter for one LoRA module, as one routine configured by combination
// type (the peft_* methods are declarations around it). Three paths, as upstream:
// - linear / ties / magnitude_prune combine the A's and the B's separately with √|weight·scaling|
//   (the sign on A), which leaves cross terms Bᵢ·Aⱼ; all ranks must match; the new rank is that rank;
// - cat stacks weight·scaling·Aᵢ (rows) and Bᵢ (columns): exact, rank Σrᵢ;
// - *_svd combine the dense deltas scalingᵢ·Bᵢ·Aᵢ with weights weightᵢ (PEFT at 5d602fd used
//   weightᵢ·scalingᵢ, i.e. the scaling twice; `peft_compat_double_scaling` restores that) and truncate to
//   svd_rank (default max rᵢ) by SVD: B = U·S, A = Vᵀ. The new adapter has r = lora_alpha = new rank.
import { MergePlanError } from '../errors.ts';
import { concatenatedFactors, stackedFactors } from '../lora/delta-factorize.ts';
import { checkModuleShapes } from '../lora/module-merge.ts';
import { type DenseMatrix, matmulInto } from '../linalg/dense.ts';
import type { SvdResult } from '../linalg/jacobi-svd.ts';
import { productSvd, svdToLoraFactors, truncateSvd } from '../linalg/low-rank-svd.ts';
import { truncatedSvd } from '../linalg/randomized-svd.ts';
import { hashSeed, seededStream } from '../linalg/seeded-random.ts';
import type {
  AdapterMergeContext,
  AdapterMergeMethod,
  LoraModuleInput,
  LoraModuleOutput,
  ParameterSpec,
  ParameterValue,
} from '../method.ts';
import { isTrue } from '../parameter-ranges.ts';
import { type MajoritySignMethod, magnitudePruneMerge, tiesMerge, weightedSum } from './merge-utils.ts';

export type PeftCombination =
  | 'linear'
  | 'cat'
  | 'svd'
  | 'ties'
  | 'ties_svd'
  | 'magnitude_prune'
  | 'magnitude_prune_svd';

const PEFT_DOCS =
  'https://huggingface.co/docs/peft/main/en/package_reference/lora#peft.LoraModel.add_weighted_adapter';

/** Extra facts a PEFT merge reports besides the new factors (for tests and diagnostics). */
export interface PeftModuleResult extends LoraModuleOutput {
  /** The dense combined delta before truncation, [out, in] (SVD types only). */
  preSvdDelta?: Float32Array;
  /** Relative Frobenius error of the truncation when the randomized SVD was used. */
  relativeError?: number;
}

export function addWeightedAdapterModule(
  combination: PeftCombination,
  ctx: AdapterMergeContext,
  options: { withPreSvdDelta?: boolean } = {},
): PeftModuleResult {
  const { adapters, params, moduleName } = ctx;
  if (adapters.length === 0) throw new MergePlanError('method_inputs', `no adapter has module ${moduleName}`);
  checkModuleShapes(moduleName, adapters);
  // PEFT: "if there is only one adapter, we can only use linear merging".
  const type = adapters.length === 1 ? 'linear' : combination;
  const weights = adapters.map((adapter) => Number(adapter.params.weight));
  if (type === 'cat') {
    const { a, b, rank } = concatenatedFactors(adapters, weights);
    return { a, b, rank };
  }
  if (type === 'linear' || type === 'ties' || type === 'magnitude_prune') {
    return factorwiseModule(type, adapters, weights, params, moduleName);
  }
  return svdModule(type, adapters, weights, params, moduleName, options.withPreSvdDelta === true);
}

function factorwiseModule(
  type: 'linear' | 'ties' | 'magnitude_prune',
  adapters: readonly LoraModuleInput[],
  weights: number[],
  params: Readonly<Record<string, ParameterValue>>,
  moduleName: string,
): PeftModuleResult {
  const rank = adapters[0].rank;
  if (adapters.some((adapter) => adapter.rank !== rank)) {
    throw new MergePlanError(
      'rank_mismatch',
      `${moduleName}: combination ${type} needs adapters of equal rank (got ${adapters.map((x) => x.rank).join(', ')}); use cat or an svd type`,
      { tensor: moduleName, parameter: 'merge_method' },
    );
  }
  // torch.tensor(valid_weights) is float32, hence the fround.
  const scaled = adapters.map((adapter, j) => weights[j] * adapter.scaling);
  const bWeights = scaled.map((ws) => Math.fround(Math.sqrt(Math.abs(ws))));
  const aWeights = scaled.map((ws, j) => (ws < 0 ? -bWeights[j] : bWeights[j]));
  const combine = (tensors: Float32Array[], w: number[]) => {
    if (type === 'linear') return weightedSum(tensors, w);
    const density = Number(params.density);
    if (type === 'magnitude_prune') return magnitudePruneMerge(tensors, w, density);
    return tiesMerge(tensors, w, density, signMethod(params));
  };
  const a = combine(
    adapters.map((adapter) => adapter.a),
    aWeights,
  );
  const b = combine(
    adapters.map((adapter) => adapter.b),
    bWeights,
  );
  return { a: Float32Array.from(a), b: Float32Array.from(b), rank };
}

function signMethod(params: Readonly<Record<string, ParameterValue>>): MajoritySignMethod {
  const method = params.majority_sign_method ?? 'total';
  if (method !== 'total' && method !== 'frequency') {
    throw new MergePlanError(
      'invalid_parameter',
      `majority_sign_method must be total or frequency, got ${method}`,
      {
        parameter: 'majority_sign_method',
      },
    );
  }
  return method;
}

function svdModule(
  type: 'svd' | 'ties_svd' | 'magnitude_prune_svd',
  adapters: readonly LoraModuleInput[],
  weights: number[],
  params: Readonly<Record<string, ParameterValue>>,
  moduleName: string,
  withPreSvdDelta: boolean,
): PeftModuleResult {
  const { outFeatures: out, inFeatures: inF } = adapters[0];
  const newRank =
    params.svd_rank !== undefined && Number(params.svd_rank) > 0
      ? Number(params.svd_rank)
      : Math.max(...adapters.map((adapter) => adapter.rank));
  const doubleScaling = isTrue(params.peft_compat_double_scaling);
  // Each Dᵢ = scalingᵢ·Bᵢ·Aᵢ already carries its scaling; PEFT 5d602fd multiplied by scalingᵢ once more.
  const coefs = adapters.map((adapter, j) => Math.fround(weights[j] * (doubleScaling ? adapter.scaling : 1)));
  let svd: SvdResult;
  let relativeError: number | undefined;
  let preSvd: Float64Array | undefined;
  if (type === 'svd') {
    // Σ cᵢ·sᵢ·Bᵢ·Aᵢ has rank ≤ Σrᵢ: stack the thin factors and take the exact factored SVD.
    const { b, a } = stackedFactors(adapters, coefs);
    svd = productSvd(b, a, newRank);
    if (withPreSvdDelta) preSvd = denseProduct(b, a); // only for diagnostics: never needed to merge
  } else {
    const deltas = adapters.map((adapter) => denseDelta(adapter));
    const density = Number(params.density);
    const combined =
      type === 'ties_svd'
        ? tiesMerge(deltas, coefs, density, signMethod(params))
        : magnitudePruneMerge(deltas, coefs, density);
    if (withPreSvdDelta) preSvd = combined;
    const dense: DenseMatrix = { rows: out, cols: inF, data: combined };
    const result = truncatedSvd(dense, newRank, { random: seededStream(hashSeed(`peft-svd:${moduleName}`)) });
    svd = result;
    if (!result.exact) relativeError = result.relativeError;
  }
  svd = truncateSvd(svd, newRank);
  const factors = svdToLoraFactors(svd);
  if (params.svd_clamp !== undefined && params.svd_clamp !== null) {
    clampFactors(factors.b, factors.a, Number(params.svd_clamp));
  }
  return { ...factors, preSvdDelta: preSvd && Float32Array.from(preSvd), relativeError };
}

/** scaling·B·A rounded to float32 (PEFT's get_delta_weight), summed in float64. */
export function denseDelta(adapter: LoraModuleInput): Float32Array {
  const { outFeatures: out, inFeatures: inF, rank } = adapter;
  const delta = new Float64Array(out * inF);
  matmulInto(delta, adapter.b, out, rank, adapter.a, inF);
  const rounded = new Float32Array(delta.length);
  for (let i = 0; i < delta.length; i++) rounded[i] = delta[i] * adapter.scaling;
  return rounded;
}

function denseProduct(b: DenseMatrix, a: DenseMatrix): Float64Array {
  const out = new Float64Array(b.rows * a.cols);
  matmulInto(out, b.data, b.rows, b.cols, a.data, a.cols);
  return out;
}

/** PEFT svd_clamp: hi = quantile(cat(U·S, Vh), q) (torch linear interpolation), both clamped to [−hi, hi]. */
function clampFactors(b: Float32Array, a: Float32Array, q: number): void {
  const all = new Float64Array(b.length + a.length);
  all.set(b);
  all.set(a, b.length);
  all.sort();
  const pos = q * (all.length - 1);
  const lo = Math.floor(pos);
  const hiIdx = Math.min(all.length - 1, lo + 1);
  const hi = all[lo] + (all[hiIdx] - all[lo]) * (pos - lo);
  for (const m of [b, a]) for (let i = 0; i < m.length; i++) m[i] = Math.min(hi, Math.max(-hi, m[i]));
}

const WEIGHT: ParameterSpec = {
  name: 'weight',
  scope: 'per-model',
  type: 'number',
  required: true,
  description: "This adapter's weight (PEFT add_weighted_adapter's weights list).",
};
const DENSITY: ParameterSpec = {
  name: 'density',
  scope: 'global',
  type: 'number',
  required: true,
  range: { min: 0, minExclusive: true, max: 1 },
  description: 'Fraction of each tensor kept by magnitude: int(density·numel) entries.',
};
const MAJORITY_SIGN: ParameterSpec = {
  name: 'majority_sign_method',
  scope: 'global',
  type: 'string',
  default: 'total',
  required: false,
  enum: ['total', 'frequency'],
  description:
    'Sign election on the unweighted pruned tensors: sum of values (total) or of signs (frequency).',
};
const SVD_PARAMETERS: readonly ParameterSpec[] = [
  {
    name: 'svd_rank',
    scope: 'global',
    type: 'integer',
    required: false,
    range: { min: 1 },
    description: 'Rank of the new adapter (default: the largest input rank).',
  },
  {
    name: 'svd_clamp',
    scope: 'global',
    type: 'number',
    required: false,
    range: { min: 0, max: 1 },
    description:
      'Quantile of the signed factor values at which both factors are clamped (default: no clamp).',
  },
  {
    name: 'svd_full_matrices',
    scope: 'global',
    type: 'boolean',
    default: true,
    required: false,
    description: 'Accepted for PEFT compatibility; the truncated factors do not depend on it.',
  },
  {
    name: 'peft_compat_double_scaling',
    scope: 'global',
    type: 'boolean',
    default: false,
    required: false,
    description:
      'Apply the LoRA scaling twice, as PEFT 5d602fd did in its SVD types (bit-compatible with it).',
  },
];

const SVD_NOTES =
  'The LoRA scaling is applied once: the combination is Σ weightᵢ·scalingᵢ·Bᵢ·Aᵢ. PEFT at 5d602fd applied it ' +
  'twice in every SVD type (Σ weightᵢ·scalingᵢ²·Bᵢ·Aᵢ; fixed by PEFT PR #3111); set peft_compat_double_scaling: ' +
  'true to reproduce it. svd_full_matrices has no effect on the truncated factors; a rank above min(out, in) is ' +
  'padded with zero components (PEFT fails there). SVD factors are unique only up to sign/rotation, so svd_clamp ' +
  'may differ from PEFT where its sign convention matters.';

const DESCRIPTIONS: Record<PeftCombination, string> = {
  linear: 'PEFT linear: A and B combined separately with √(weight·scaling) (keeps cross terms Bᵢ·Aⱼ).',
  cat: 'PEFT cat: concatenates the weighted LoRA factors; exact, new rank Σrᵢ.',
  svd: 'PEFT svd: truncated SVD of the weighted sum of the dense LoRA deltas.',
  ties: 'PEFT ties on the A and B factors separately: magnitude prune, unweighted sign vote, count-averaged.',
  ties_svd: 'PEFT ties_svd: TIES on the dense LoRA deltas, then truncated SVD.',
  magnitude_prune: 'PEFT magnitude_prune on the A and B factors separately: magnitude prune, weighted sum.',
  magnitude_prune_svd:
    'PEFT magnitude_prune_svd: magnitude-pruned weighted sum of the dense deltas, then truncated SVD.',
};

/** The declaration of one peft_* method. */
export function peftMethod(combination: PeftCombination): AdapterMergeMethod {
  const isSvd = combination.endsWith('svd');
  const pruned = combination.startsWith('ties') || combination.startsWith('magnitude_prune');
  const parameters: ParameterSpec[] = [WEIGHT];
  if (pruned) parameters.push(DENSITY);
  if (combination.startsWith('ties')) parameters.push(MAJORITY_SIGN);
  if (isSvd) parameters.push(...SVD_PARAMETERS);
  const notes: string[] = [];
  if (isSvd) notes.push(SVD_NOTES);
  if (combination === 'ties_svd' || combination === 'magnitude_prune_svd') {
    notes.push(
      'Modules whose smaller side exceeds 128 use a seeded randomized SVD (rank + 10 columns, 4 power iterations; relative error within 1e-8 of optimal in our tests) instead of a full SVD.',
    );
  }
  if (combination === 'linear' || combination === 'ties' || combination === 'magnitude_prune') {
    notes.push('As in PEFT, all adapters must have the same rank, and a single adapter is merged as linear.');
  }
  if (combination === 'cat') {
    notes.push(
      'A module missing from some adapters gets the rank of the adapters that have it (PEFT zero-pads to Σrᵢ).',
    );
  }
  return {
    kind: 'adapter',
    name: `peft_${combination}`,
    description: DESCRIPTIONS[combination],
    paper: combination.startsWith('ties') ? 'https://arxiv.org/abs/2306.01708' : PEFT_DOCS,
    parameters,
    notes: notes.length > 0 ? notes.join(' ') : undefined,
    mergeModule(ctx) {
      const { a, b, rank } = addWeightedAdapterModule(combination, ctx);
      return { a, b, rank };
    },
  };
}
