// The shape every merge method declares. A method is data (name, paper, parameters) plus a pure
// function over one tensor's inputs; the same declaration validates recipes, fills defaults,
// feeds GET /v1/methods, the OpenAPI schema and the docs. Data movement is the planner's job.
import type { DType, TypedArray } from '../tensors/index.ts';

/** A value a recipe parameter resolves to for one tensor (after gradients and filters). */
export type ParameterValue = number | boolean | string;

export type ParameterScope = 'per-model' | 'global';

export type ParameterType = 'number' | 'integer' | 'boolean' | 'string';

/**
 * The values a number or integer parameter accepts: an interval whose ends are closed unless marked
 * exclusive (density: {min: 0, minExclusive: true, max: 1} is (0, 1]). An absent end is unbounded;
 * every value is finite (the recipe parser refuses NaN and infinities).
 */
export interface ParameterRange {
  min?: number;
  max?: number;
  minExclusive?: boolean;
  maxExclusive?: boolean;
}

export interface ParameterSpec {
  name: string;
  /** per-model: read from models[].parameters, then the top level; global: top level only (as mergekit). */
  scope: ParameterScope;
  type: ParameterType;
  /** Undefined means "no default": required parameters have none. */
  default?: ParameterValue;
  required: boolean;
  description: string;
  /** For string parameters: the accepted values. */
  enum?: readonly string[];
  /** For number and integer parameters: the accepted interval (absent: any finite value). */
  range?: ParameterRange;
}

/** One model's resolved per-model parameters for one tensor, as a cross-parameter rule sees them. */
export interface ResolvedModelParameters {
  /** The model's name as written in the recipe. */
  model: string;
  isBase: boolean;
  params: Readonly<Record<string, ParameterValue>>;
}

/** What a method's cross-parameter rule is given: one tensor's resolved parameters. */
export interface ParameterRuleInput {
  tensorName: string;
  /** Elements of the tensor (of the LoRA module's dense delta for adapter methods). */
  numel: number;
  global: Readonly<Record<string, ParameterValue>>;
  models: readonly ResolvedModelParameters[];
}

/** A broken cross-parameter rule: which parameter (and model) to name in the 422, and why. */
export interface ParameterRuleViolation {
  parameter: string;
  model?: string;
  message: string;
}

/** One input of a tensor merge, in mergekit's order (recipe order; an unlisted base model last). */
export interface TensorInput {
  /** The model's name as written in the recipe (a path or an artifact id). */
  model: string;
  isBase: boolean;
  /** The tensor converted to F32. Methods must not mutate it: the planner may share it. */
  data: Float32Array;
  /** This model's per-model parameters resolved for this tensor. */
  params: Readonly<Record<string, ParameterValue>>;
}

/** A deterministic random stream (uniform in [0, 1)); the same seed gives the same draws anywhere. */
export interface RandomStream {
  next(): number;
  /** Optional bulk form: the next out.length values of next() times 2^32 (exact integers). */
  fillUint32?(out: Uint32Array): void;
}

export interface TensorMergeContext {
  /** Full tensor name, e.g. `model.layers.0.self_attn.q_proj.weight`. */
  tensorName: string;
  shape: readonly number[];
  /** All inputs, base included when the recipe has one (see TensorInput.isBase). */
  inputs: readonly TensorInput[];
  /** Global parameters resolved for this tensor. */
  params: Readonly<Record<string, ParameterValue>>;
  /** Random stream for this tensor and a named purpose (e.g. the model index); only for `random` methods. */
  random(stream: string): RandomStream;
  /**
   * Set by the executor when it owns the inputs' arrays and drops them after the call: a method may
   * then reuse an input's array as scratch or output, provided no other input shares that array.
   */
  inputsWritable?: boolean;
}

/** One input of an encoded merge: the tensor's elements as stored (null: zeros of the output's shape). */
export interface EncodedTensorInput {
  model: string;
  isBase: boolean;
  dtype: DType;
  /** Raw elements in `dtype`'s typed array, numel long; null reads as zeros. Read-only. */
  data: TypedArray | null;
  params: Readonly<Record<string, ParameterValue>>;
}

/** mergeTensor's context with stored inputs and a caller-given output buffer, for the fused kernels. */
export interface EncodedMergeContext extends Omit<TensorMergeContext, 'inputs' | 'inputsWritable'> {
  inputs: readonly EncodedTensorInput[];
  outDtype: DType;
  /** Receives the result encoded as outDtype (numel elements of its typed array). */
  out: TypedArray;
}

/** One step of a range-split merge on elements [from, to) of a tensor (plain data: posted to workers). */
export type RangePhase =
  | { kind: 'histogram-high'; from: number; to: number }
  | { kind: 'histogram-low'; from: number; to: number; bins: number[] }
  | { kind: 'draws'; from: number; to: number }
  | {
      kind: 'merge';
      from: number;
      to: number;
      cutoffs: Array<{ threshold: number; tiesLeft: number }>;
      /** DARE's kept entries of [from, to) per non-base model (from the draws phase), null for the others. */
      kept?: Array<KeptEntries | null>;
    };

/** DARE's outcome for one model: which entries are kept (one bit each) and the rescale factor. */
export interface KeptEntries {
  bits: Uint32Array;
  scaled: boolean;
  scale: number;
}

/** What a statistics phase answers per non-base model (null where that model needs no statistic). */
export interface RangeHistograms {
  /** TIES's k per non-base model (0 where the model is not trimmed). */
  k: number[];
  histograms: Array<Uint32Array | null>;
  /** Whether each non-base model draws DARE's random drop (a draws phase must run first). */
  random: boolean[];
}

/** The draws phase's answer: every drawing model's kept entries over the whole tensor. */
export interface RangeDraws {
  kept: Array<KeptEntries | null>;
}

/** Any phase's answer: a merge's non-finite count, or a statistic. */
export type RangeAnswer = number | RangeHistograms | RangeDraws;

/**
 * A fused merge split over element ranges of one tensor, for threads that share its inputs: whole-tensor
 * statistics are computed per range and combined, then each range is merged. The bytes are those of
 * mergeEncoded on the whole tensor.
 */
export interface RangeSplitMerge {
  /** Whether a tensor of `numel` elements with these parameters splits exactly (else it merges whole). */
  splits(
    numel: number,
    params: Readonly<Record<string, ParameterValue>>,
    perModel: ReadonlyArray<Readonly<Record<string, ParameterValue>>>,
  ): boolean;
  /** Runs one phase on one range; a statistics phase answers its statistic, a merge its non-finite count. */
  runPhase(ctx: EncodedMergeContext, phase: RangePhase): RangeAnswer;
  /** Drives the phases over `ranges` through `run` (which may run them anywhere); the non-finite count. */
  mergeInRanges(
    ranges: ReadonlyArray<readonly [number, number]>,
    run: (phase: RangePhase) => Promise<RangeAnswer>,
  ): Promise<number>;
}

/** How a method uses `base_model`. */
export type BaseModelUse = 'required' | 'optional' | 'none';

interface MethodDeclaration {
  name: string;
  /** One line for GET /v1/methods and the docs. */
  description: string;
  /** The paper's URL, when the method has one. */
  paper?: string;
  parameters: readonly ParameterSpec[];
  /** Where lorafuse knowingly differs from the reference implementation, and why. */
  notes?: string;
  /**
   * Rules across parameters or against the tensor's size that a per-parameter range cannot state
   * (della: density ± epsilon inside (0, 1)); checked at plan time for every tensor, so a recipe the
   * worker would refuse is refused before it is queued.
   */
  parameterRule?: string;
  checkParameters?(input: ParameterRuleInput): ParameterRuleViolation | undefined;
}

/** A mergekit-style method: one output tensor from the same tensor of every input model. */
export interface TensorMergeMethod extends MethodDeclaration {
  kind: 'tensor';
  baseModel: BaseModelUse;
  /** Draws random numbers: the recipe's `seed` makes it reproducible. */
  random: boolean;
  /** Minimum number of non-base inputs. */
  minModels: number;
  /** Maximum number of non-base inputs (slerp: 1 with a base, 2 without); undefined = unbounded. */
  maxModels?: number;
  /**
   * The output is Σ cᵢ·xᵢ over the inputs (a zero base included) with coefficients that depend on the
   * parameters only. Declared, not guessed: LoRA delta-space merges of such methods keep rank ≤ Σrᵢ and
   * are re-factored exactly from the thin factors.
   */
  linearInInputs?: boolean;
  mergeTensor(ctx: TensorMergeContext): Float32Array;
  /**
   * Optional fused form: decodes, merges and encodes in cache-sized blocks with no tensor-sized
   * temporaries. Must give exactly the bytes of mergeTensor followed by encoding; returns how many
   * merged values were NaN or ±Inf.
   */
  mergeEncoded?(ctx: EncodedMergeContext): number;
  /** Optional: mergeEncoded split over element ranges of one large tensor (see RangeSplitMerge). */
  rangeSplit?: RangeSplitMerge;
}

/** One LoRA module of one adapter, as PEFT's add_weighted_adapter sees it. */
export interface LoraModuleInput {
  /** lora_A.weight, [r, in] row-major. */
  a: Float32Array;
  /** lora_B.weight, [out, r] row-major. */
  b: Float32Array;
  rank: number;
  inFeatures: number;
  outFeatures: number;
  /** lora_alpha / r (or / sqrt(r) with rslora), after rank/alpha patterns. */
  scaling: number;
  params: Readonly<Record<string, ParameterValue>>;
}

export interface LoraModuleOutput {
  a: Float32Array;
  b: Float32Array;
  rank: number;
}

export interface AdapterMergeContext {
  /** Module name without the PEFT prefix, e.g. `model.layers.0.self_attn.q_proj`. */
  moduleName: string;
  adapters: readonly LoraModuleInput[];
  params: Readonly<Record<string, ParameterValue>>;
}

/** A PEFT add_weighted_adapter-style method: a new LoRA module from the modules of several adapters. */
export interface AdapterMergeMethod extends MethodDeclaration {
  kind: 'adapter';
  mergeModule(ctx: AdapterMergeContext): LoraModuleOutput;
}

/** The data a data-driven method reads per task (task i is recipe input i). */
export interface DataRequirement {
  /** The split read: always the validation split (selection on test is never allowed). */
  split: 'validation';
  /** labeled: inputs and labels (a loss); unlabeled: inputs only (labels, when present, are not read). */
  labels: 'labeled' | 'unlabeled';
}

/** What a data-driven method accepts as inputs and how it treats each kind. */
export interface DataDrivenInputSupport {
  /** Full fine-tuned models (with base_model as θ₀ where the method needs task vectors). */
  models: boolean;
  /** LoRA adapters over base_model, and the space the method combines them in. */
  adapters: false | { space: 'parameters' | 'delta'; output: 'adapter' | 'model' };
}

/**
 * A method that needs the model runtime and per-task data (LoraHub, AdaMerging, Fisher, RegMean): the
 * declaration lives here (validation, GET /v1/methods, docs); the math runs in src/eval/data-driven, which
 * may use the tfjs runtime that src/merge never imports. `lorafuse merge` cannot run these (no data).
 */
export interface DataDrivenMergeMethod extends MethodDeclaration {
  kind: 'data-driven';
  /** θ₀: required where the method combines task vectors, optional where it averages whole weights. */
  baseModel: { models: BaseModelUse; adapters: 'required' };
  /** Seeded (the recipe's seed): sampling of examples, batches or candidates. */
  random: boolean;
  minModels: number;
  data: DataRequirement;
  inputs: DataDrivenInputSupport;
}

export type MergeMethod = TensorMergeMethod | AdapterMergeMethod | DataDrivenMergeMethod;
