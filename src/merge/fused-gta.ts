// Generalized task arithmetic (task arithmetic, TIES, DARE) straight from the stored inputs to the
// encoded output, in cache-sized blocks: decode, task vectors, masks, merge and encode all stay in a
// few L2-resident blocks, so no tensor-sized temporary exists. Whole-tensor statistics (the top-k
// cutoff, L1 norms, DARE's kept entries) cost extra passes over the stored inputs instead. Every value
// is the one mergeGeneralizedTaskArithmetic computes, with the same float32 roundings in the same
// order (norms summed in index order), and DARE draws the same stream in the same order: the output
// bytes are identical to mergeTensor followed by encoding (test/merge/fused-gta.test.ts checks it).
import type { DType, TypedArray } from '../tensors/index.ts';
import {
  decodeIntoFloat32,
  encodeFloat32Into,
  float32ToBF16CountingNonFinite,
} from '../tensors/float-conversion.ts';
import { countNonFinite } from './kernels/reductions.ts';
import type {
  EncodedMergeContext,
  EncodedTensorInput,
  RandomStream,
  RangeAnswer,
  RangeDraws,
  RangeHistograms,
  RangePhase,
} from './method.ts';
import { isTrue } from './parameter-ranges.ts';
import { RESCALE_EPS } from './sparsify.ts';

export interface FusedGtaConfig {
  name: string;
  sparsification?: 'magnitude' | 'random';
  consensus?: 'sum' | 'count';
}

/** Elements per block: a handful of float32 blocks (inputs, task vectors, output) fit in L2. */
const BLOCK = 8192;

// Per-thread working set, allocated once and reused tensor after tensor (merges are synchronous).
const baseBlock = new Float32Array(BLOCK);
const outBlock = new Float32Array(BLOCK);
const zeroBlock = new Float32Array(BLOCK);
const drawBlock = new Uint32Array(BLOCK);
const inputBlocks: Float32Array[] = [];
const deltaBlocks: Float32Array[] = [];
const histograms: Uint32Array[] = [];
/** DARE's kept entries, one bit each per model; grown to the largest tensor seen. */
const keptBits: Uint32Array[] = [];
/** Whole task vectors of tensors up to MATERIALIZE_LIMIT elements, one per model, kept across tensors. */
const stores: Float32Array[] = [];
/**
 * Up to this many elements a tensor's task vectors are computed once and kept (4 MiB × 4 bytes per
 * model and thread) for the later passes; larger tensors (embeddings) recompute them from the stored
 * inputs in each pass instead, so memory stays bounded by blocks whatever the tensor's size.
 */
const MATERIALIZE_LIMIT = 4 * 1024 * 1024;
let materializeLimit = MATERIALIZE_LIMIT;

/** Runs `body` with another materialization limit (tests reach the recomputing path with small tensors). */
export function withMaterializeLimit<T>(limit: number, body: () => T): T {
  const saved = materializeLimit;
  materializeLimit = limit;
  try {
    return body();
  } finally {
    materializeLimit = saved;
  }
}
const newBlock = () => new Float32Array(BLOCK);

/** Drops the pooled task vectors and masks (after a merge, so an idle thread does not hold them). */
export function releaseFusedScratch(): void {
  stores.length = 0;
  keptBits.length = 0;
}

function storeFor(model: number, numel: number): Float32Array {
  let store = stores[model];
  if (!store || store.length < numel) {
    store = new Float32Array(Math.max(numel, Math.min(materializeLimit, 2 * (store?.length ?? 0))));
    stores[model] = store;
  }
  return store.subarray(0, numel);
}

function pooled<T>(list: T[], index: number, make: () => T): T {
  let item = list[index];
  if (!item) {
    item = make();
    list[index] = item;
  }
  return item;
}

function keptBitsFor(model: number, numel: number): Uint32Array {
  const words = Math.ceil(numel / 32);
  let bits = keptBits[model];
  if (!bits || bits.length < words) {
    bits = new Uint32Array(words);
    keptBits[model] = bits;
  }
  return bits.subarray(0, words);
}

type Sub = { subarray(begin: number, end: number): TypedArray };

/** Elements [start, start+length) of an input as float32: a view for F32, zeros for null, else decoded. */
function inputBlock(input: EncodedTensorInput, start: number, length: number, scratch: Float32Array) {
  if (!input.data) return zeroBlock.subarray(0, length);
  const raw = (input.data as Sub).subarray(start, start + length);
  if (input.dtype === 'F32') return raw as Float32Array;
  return decodeIntoFloat32(input.dtype, raw, scratch.subarray(0, length));
}

/** Encodes a block of results into out[start..]; returns how many were NaN or ±Inf. */
function encodeBlock(values: Float32Array, dtype: DType, out: TypedArray, start: number): number {
  const target = (out as Sub).subarray(start, start + values.length);
  if (dtype === 'BF16') return float32ToBF16CountingNonFinite(values, target as Uint16Array).nonFinite;
  encodeFloat32Into(values, dtype, target);
  return countNonFinite(values);
}

interface ModelState {
  input: EncodedTensorInput;
  /** Position in ctx.inputs (names the random stream, as the unfused path does). */
  index: number;
  /** dense: δ unchanged; top-k: TIES's magnitude top-k; bernoulli: DARE's random keep. */
  kind: 'dense' | 'top-k' | 'bernoulli';
  k: number;
  threshold: number;
  tiesLeft: number;
  /** Draws below this keep the entry (u/2^32 < p ⇔ u < p·2^32). */
  keepBelow: number;
  random: RandomStream | null;
  bits: Uint32Array | null;
  /** The word of the whole tensor's kept bits that bits[0] is (a range's slice starts later). */
  bitsWord: number;
  /** The whole task vector, when materialized; `filled` once a pass has computed all of it. */
  store: Float32Array | null;
  filled: boolean;
  before: number;
  after: number;
  scaled: boolean;
  scale: number;
}

/** d[j] = x[j] − b[j], rounded to float32 by the store. */
function subtractInto(d: Float32Array, x: Float32Array, b: Float32Array, length: number): void {
  for (let j = 0; j < length; j++) d[j] = x[j] - b[j];
}

/** The block of a model's task vector: from its store once filled, else computed (into the store when it has one). */
function taskVectorBlock(
  s: ModelState,
  m: number,
  start: number,
  length: number,
  b: Float32Array,
): Float32Array {
  if (s.store) {
    const d = s.store.subarray(start, start + length);
    if (!s.filled)
      subtractInto(d, inputBlock(s.input, start, length, pooled(inputBlocks, m, newBlock)), b, length);
    return d;
  }
  const d = pooled(deltaBlocks, m, newBlock);
  subtractInto(d, inputBlock(s.input, start, length, pooled(inputBlocks, m, newBlock)), b, length);
  return d;
}

function keyBits(d: Float32Array, length: number): Uint32Array {
  return new Uint32Array(d.buffer, d.byteOffset, length);
}

function forEachBlock(n: number, body: (start: number, length: number) => void): void {
  forEachBlockIn(0, n, body);
}

/** Blocks of [from, to) (a range of a split tensor, or all of it). */
function forEachBlockIn(from: number, to: number, body: (start: number, length: number) => void): void {
  for (let start = from; start < to; start += BLOCK) body(start, Math.min(BLOCK, to - start));
}

/** Radix select of TIES's cutoff (the k-th largest |δ| bits and how many ties at it are kept). */
function selectTopK(states: ModelState[], base: EncodedTensorInput, n: number, rescale: boolean): void {
  const select = states.filter((s) => s.kind === 'top-k' && s.k < n);
  for (const s of states) {
    if (s.kind === 'top-k' && s.k >= n) {
      // keepLargestMagnitudes keeps everything: no cutoff
      s.threshold = 0;
      s.tiesLeft = n;
    }
  }
  const sumBefore = rescale ? states.filter((s) => s.kind === 'top-k') : [];
  if (select.length === 0 && sumBefore.length === 0) return;
  const above = new Float64Array(states.length);
  const high = new Int32Array(states.length);
  for (const [m, s] of states.entries())
    if (select.includes(s)) pooled(histograms, m, () => new Uint32Array(65536)).fill(0);
  // Pass 1: histogram of the high 16 bits of |δ| (and ‖δ‖₁ before trimming, in index order).
  forEachBlock(n, (start, length) => {
    const b = inputBlock(base, start, length, baseBlock);
    for (const [m, s] of states.entries()) {
      if (s.kind !== 'top-k') continue;
      const d = taskVectorBlock(s, m, start, length, b);
      if (rescale) {
        let before = s.before;
        for (let j = 0; j < length; j++) before += Math.abs(d[j]);
        s.before = before;
      }
      if (s.k >= n) continue;
      const bits = keyBits(d, length);
      const histogram = histograms[m];
      for (let j = 0; j < length; j++) histogram[(bits[j] & 0x7fffffff) >>> 16]++;
    }
  });
  for (const s of states) if (s.kind === 'top-k' && s.store) s.filled = true;
  if (select.length === 0) return;
  for (const [m, s] of states.entries()) {
    if (!select.includes(s)) continue;
    const histogram = histograms[m];
    let count = 0;
    let bin = 65535;
    while (count + histogram[bin] < s.k) count += histogram[bin--];
    above[m] = count;
    high[m] = bin;
    histogram.fill(0);
  }
  // Pass 2: histogram of the low 16 bits among the entries in the cutoff's high bin.
  forEachBlock(n, (start, length) => {
    const b = inputBlock(base, start, length, baseBlock);
    for (const [m, s] of states.entries()) {
      if (!select.includes(s)) continue;
      const d = taskVectorBlock(s, m, start, length, b);
      const bits = keyBits(d, length);
      const histogram = histograms[m];
      const bin = high[m];
      for (let j = 0; j < length; j++) {
        const key = bits[j] & 0x7fffffff;
        if (key >>> 16 === bin) histogram[key & 0xffff]++;
      }
    }
  });
  for (const [m, s] of states.entries()) {
    if (!select.includes(s)) continue;
    const histogram = histograms[m];
    let count = above[m];
    let low = 65535;
    while (count + histogram[low] < s.k) count += histogram[low--];
    s.threshold = ((high[m] << 16) | low) >>> 0;
    s.tiesLeft = s.k - count;
  }
}

/** Keeps (in place) the entries of one block that TIES keeps; advances the model's tie counter. */
function trimBlock(s: ModelState, d: Float32Array, length: number): void {
  const bits = keyBits(d, length);
  const threshold = s.threshold;
  let tiesLeft = s.tiesLeft;
  for (let j = 0; j < length; j++) {
    const key = bits[j] & 0x7fffffff;
    if (key > threshold) continue;
    if (key === threshold && tiesLeft > 0) tiesLeft--;
    else d[j] = 0;
  }
  s.tiesLeft = tiesLeft;
}

/** ‖kept δ‖₁ of one block, in index order, without trimming it; advances the model's tie counter. */
function sumKept(s: ModelState, d: Float32Array, length: number): void {
  const bits = keyBits(d, length);
  const threshold = s.threshold;
  let tiesLeft = s.tiesLeft;
  let after = s.after;
  for (let j = 0; j < length; j++) {
    const key = bits[j] & 0x7fffffff;
    if (key > threshold) after += Math.abs(d[j]);
    else if (key === threshold && tiesLeft > 0) {
      tiesLeft--;
      after += Math.abs(d[j]);
    }
  }
  s.tiesLeft = tiesLeft;
  s.after = after;
}

/** Fills draws with the stream's next values ×2^32 (the bulk form when the stream has one). */
function drawInto(random: RandomStream, draws: Uint32Array): void {
  if (random.fillUint32) {
    random.fillUint32(draws);
    return;
  }
  for (let j = 0; j < draws.length; j++) draws[j] = random.next() * 4294967296;
}

/** DARE's draws, in index order as sparsifyBernoulli draws them, kept as bits; ‖δ‖₁ before and after. */
function drawKeptEntries(states: ModelState[], base: EncodedTensorInput, n: number): void {
  const drawing = states.filter((s) => s.kind === 'bernoulli');
  if (drawing.length === 0) return;
  for (const [m, s] of states.entries()) {
    if (s.kind === 'bernoulli' && !s.store) {
      s.bits = keptBitsFor(m, n);
      s.bits.fill(0);
    }
  }
  forEachBlock(n, (start, length) => {
    const b = inputBlock(base, start, length, baseBlock);
    const draws = drawBlock.subarray(0, length);
    for (const [m, s] of states.entries()) {
      if (s.kind !== 'bernoulli') continue;
      const d = taskVectorBlock(s, m, start, length, b);
      drawInto(s.random!, draws);
      const keepBelow = s.keepBelow;
      let before = s.before;
      let after = s.after;
      if (s.store) {
        // materialized: drop in place, as sparsifyBernoulli does
        for (let j = 0; j < length; j++) {
          const magnitude = Math.abs(d[j]);
          before += magnitude;
          if (draws[j] < keepBelow) after += magnitude;
          else d[j] = 0;
        }
      } else {
        const bits = s.bits!;
        const word = start >>> 5;
        for (let j = 0; j < length; j++) {
          const magnitude = Math.abs(d[j]);
          before += magnitude;
          if (draws[j] < keepBelow) {
            after += magnitude;
            bits[word + (j >>> 5)] |= 1 << (j & 31);
          }
        }
      }
      s.before = before;
      s.after = after;
    }
  });
  for (const s of drawing) if (s.store) s.filled = true;
}

// The per-element merges, as top-level functions so that every value they loop over is a local.

/** TIES/DARE sign election ("sum" or "count") and the disjoint merge, as mergeGeneralizedTaskArithmetic. */
function combineConsensus(
  o: Float32Array,
  b: Float32Array,
  sources: Float32Array[],
  weights: Float32Array,
  length: number,
  sparsified: boolean,
  bySum: boolean,
  normalize: boolean,
  applyLambda: boolean,
  lambda32: number,
): void {
  const count = sources.length;
  if (sparsified && bySum) {
    combineSparsifiedBySum(o, b, sources, weights, length, normalize, applyLambda, lambda32);
    return;
  }
  for (let j = 0; j < length; j++) {
    const bj = b[j];
    let vote = 0;
    let positive = 0;
    let negative = 0;
    let positiveWeight = 0;
    let negativeWeight = 0;
    for (let m = 0; m < count; m++) {
      const d = sparsified ? sources[m][j] : Math.fround(sources[m][j] - bj);
      const w = weights[m];
      const wd = Math.fround(w * d);
      if (wd > 0) {
        positive = Math.fround(positive + wd);
        positiveWeight = Math.fround(positiveWeight + w);
        vote = bySum ? Math.fround(vote + wd) : vote + 1;
      } else if (wd < 0) {
        negative = Math.fround(negative + wd);
        negativeWeight = Math.fround(negativeWeight + w);
        vote = bySum ? Math.fround(vote + wd) : vote - 1;
      }
    }
    // The majority sign is +1 where the vote is ≥ 0 (ties go to +1).
    let mixed = vote >= 0 ? positive : negative;
    const voteDivisor = vote >= 0 ? positiveWeight : negativeWeight;
    if (normalize) mixed = Math.fround(mixed / (voteDivisor === 0 ? 1 : voteDivisor));
    if (applyLambda) mixed = Math.fround(mixed * lambda32);
    o[j] = bj + mixed;
  }
}

/** combineConsensus for sparsified task vectors and the "sum" vote (TIES, DARE-TIES), unswitched. */
function combineSparsifiedBySum(
  o: Float32Array,
  b: Float32Array,
  sources: Float32Array[],
  weights: Float32Array,
  length: number,
  normalize: boolean,
  applyLambda: boolean,
  lambda32: number,
): void {
  const count = sources.length;
  for (let j = 0; j < length; j++) {
    let vote = 0;
    let positive = 0;
    let negative = 0;
    let positiveWeight = 0;
    let negativeWeight = 0;
    for (let m = 0; m < count; m++) {
      const w = weights[m];
      const wd = Math.fround(w * sources[m][j]);
      if (wd > 0) {
        positive = Math.fround(positive + wd);
        positiveWeight = Math.fround(positiveWeight + w);
        vote = Math.fround(vote + wd);
      } else if (wd < 0) {
        negative = Math.fround(negative + wd);
        negativeWeight = Math.fround(negativeWeight + w);
        vote = Math.fround(vote + wd);
      }
    }
    let mixed = vote >= 0 ? positive : negative;
    if (normalize) {
      const voteDivisor = vote >= 0 ? positiveWeight : negativeWeight;
      mixed = Math.fround(mixed / (voteDivisor === 0 ? 1 : voteDivisor));
    }
    if (applyLambda) mixed = Math.fround(mixed * lambda32);
    o[j] = b[j] + mixed;
  }
}

/** Task arithmetic: Σ wᵢ(xᵢ − b) in model order, each difference, product and sum rounded. */
function combineTaskVectors(
  o: Float32Array,
  b: Float32Array,
  sources: Float32Array[],
  weights: Float32Array,
  length: number,
  normalize: boolean,
  divisor: number,
  applyLambda: boolean,
  lambda32: number,
): void {
  const count = sources.length;
  const x0 = sources[0];
  const w0 = weights[0];
  if (count === 3 && !normalize && !applyLambda) {
    // the common case, unrolled
    const x1 = sources[1];
    const x2 = sources[2];
    const w1 = weights[1];
    const w2 = weights[2];
    for (let j = 0; j < length; j++) {
      const bj = b[j];
      let mixed = Math.fround(w0 * Math.fround(x0[j] - bj));
      mixed = Math.fround(mixed + Math.fround(w1 * Math.fround(x1[j] - bj)));
      mixed = Math.fround(mixed + Math.fround(w2 * Math.fround(x2[j] - bj)));
      o[j] = bj + mixed;
    }
    return;
  }
  for (let j = 0; j < length; j++) {
    const bj = b[j];
    let mixed = Math.fround(w0 * Math.fround(x0[j] - bj));
    for (let m = 1; m < count; m++)
      mixed = Math.fround(mixed + Math.fround(weights[m] * Math.fround(sources[m][j] - bj)));
    if (normalize) mixed = Math.fround(mixed / divisor);
    if (applyLambda) mixed = Math.fround(mixed * lambda32);
    o[j] = bj + mixed;
  }
}

/** Sparsified task vectors without consensus (dare_linear): Σ wᵢδᵢ in model order, rounded per step. */
function combineSparsified(
  o: Float32Array,
  b: Float32Array,
  sources: Float32Array[],
  weights: Float32Array,
  length: number,
  normalize: boolean,
  divisor: number,
  applyLambda: boolean,
  lambda32: number,
): void {
  const count = sources.length;
  for (let j = 0; j < length; j++) {
    let mixed = Math.fround(weights[0] * sources[0][j]);
    for (let m = 1; m < count; m++) mixed = Math.fround(mixed + Math.fround(weights[m] * sources[m][j]));
    if (normalize) mixed = Math.fround(mixed / divisor);
    if (applyLambda) mixed = Math.fround(mixed * lambda32);
    o[j] = b[j] + mixed;
  }
}

/** A fused merge's per-model states and settings, from the context alone (every range computes the same). */
interface Prepared {
  base: EncodedTensorInput;
  n: number;
  states: ModelState[];
  weights: Float32Array;
  sparsified: boolean;
  rescale: boolean;
}

function prepare(config: FusedGtaConfig, ctx: EncodedMergeContext): Prepared {
  const base = ctx.inputs.find((input) => input.isBase);
  if (!base) throw new Error(`${config.name} needs a base model`);
  const n = ctx.out.length;
  const models = ctx.inputs.map((input, index) => ({ input, index })).filter(({ input }) => !input.isBase);
  const weights = Float32Array.from(models, ({ input }) => Number(input.params.weight));
  const states: ModelState[] = models.map(({ input, index }) => {
    const density = Number(input.params.density ?? 1);
    const state: ModelState = {
      input,
      index,
      kind: 'dense',
      k: 0,
      threshold: 0,
      tiesLeft: 0,
      keepBelow: 0,
      random: null,
      bits: null,
      bitsWord: 0,
      store: null,
      filled: false,
      before: 0,
      after: 0,
      scaled: false,
      scale: 1,
    };
    if (config.sparsification === 'magnitude' && density < 1) {
      const k = Math.trunc(density * n);
      if (k <= 0) throw new Error(`density ${density} keeps no entry of a ${n}-element tensor`);
      state.kind = 'top-k';
      state.k = k;
    } else if (config.sparsification === 'random' && density < 1) {
      state.kind = 'bernoulli';
      state.keepBelow = Math.fround(density) * 4294967296;
      state.random = ctx.random(`model:${index}`);
    }
    return state;
  });
  return {
    base,
    n,
    states,
    weights,
    sparsified: config.sparsification !== undefined,
    rescale: isTrue(ctx.params.rescale),
  };
}

/** mergeGeneralizedTaskArithmetic (for the configurations above) as an encoded merge; returns the non-finite count. */
export function mergeGtaEncoded(config: FusedGtaConfig, ctx: EncodedMergeContext): number {
  const prepared = prepare(config, ctx);
  const { base, n, states, sparsified, rescale } = prepared;
  if (states.length === 0) return encodeBase(ctx, base, 0, n);
  if (sparsified && n <= materializeLimit) for (const [m, s] of states.entries()) s.store = storeFor(m, n);

  selectTopK(states, base, n, rescale);
  drawKeptEntries(states, base, n);
  if (rescale) {
    // TIES's ‖δ‖₁ after trimming (summed in index order over the kept entries, as sumAbs does)
    const trimmed = states.filter((s) => s.kind === 'top-k');
    if (trimmed.length > 0) {
      const ties = trimmed.map((s) => s.tiesLeft);
      forEachBlock(n, (start, length) => {
        const b = inputBlock(base, start, length, baseBlock);
        for (const [m, s] of states.entries()) {
          if (s.kind !== 'top-k') continue;
          sumKept(s, taskVectorBlock(s, m, start, length, b), length);
        }
      });
      for (const [i, s] of trimmed.entries()) s.tiesLeft = ties[i];
    }
    setRescale(states);
  }
  return mergePass(config, ctx, prepared, 0, n);
}

/** Each sparsified task vector's rescale to its L1 norm before sparsifying (sums already taken). */
function setRescale(states: ModelState[]): void {
  for (const s of states) {
    if (s.kind === 'dense') continue;
    s.scaled = !(s.before < RESCALE_EPS || s.after < RESCALE_EPS);
    s.scale = Math.fround(s.before / s.after);
  }
}

/** A merge with no task vectors: the base, encoded. */
function encodeBase(ctx: EncodedMergeContext, base: EncodedTensorInput, from: number, to: number): number {
  let nonFinite = 0;
  forEachBlockIn(from, to, (start, length) => {
    nonFinite += encodeBlock(inputBlock(base, start, length, baseBlock), ctx.outDtype, ctx.out, start);
  });
  return nonFinite;
}

/** The last pass over elements [from, to): sparsify (with the statistics set), elect, merge, encode. */
function mergePass(
  config: FusedGtaConfig,
  ctx: EncodedMergeContext,
  prepared: Prepared,
  from: number,
  to: number,
): number {
  const { base, states, weights, sparsified } = prepared;
  const { out, outDtype } = ctx;
  const count = states.length;
  let nonFinite = 0;
  const normalize = isTrue(ctx.params.normalize);
  const lambda = Number(ctx.params.lambda ?? 1);
  const applyLambda = lambda !== 1; // mergekit skips the multiply when λ == 1
  const lambda32 = Math.fround(lambda);
  let weightSum = 0;
  for (let m = 0; m < count; m++) weightSum = Math.fround(weightSum + weights[m]);
  const divisor = Math.abs(weightSum) < 1e-8 ? 1 : weightSum;
  const sources: Float32Array[] = states.map(() => baseBlock);
  const bySum = config.consensus === 'sum';

  forEachBlockIn(from, to, (start, length) => {
    const b = inputBlock(base, start, length, baseBlock);
    for (let m = 0; m < count; m++) {
      const s = states[m];
      if (!sparsified) {
        sources[m] = inputBlock(s.input, start, length, pooled(inputBlocks, m, newBlock));
        continue;
      }
      // The sparsified task vector as sparsify.ts leaves it: δ, trimmed or dropped, then × scale.
      const d = taskVectorBlock(s, m, start, length, b);
      if (s.kind === 'top-k') trimBlock(s, d, length);
      else if (s.kind === 'bernoulli' && !s.store) {
        const bits = s.bits!;
        const first = start - s.bitsWord * 32; // the bit of element `start`
        for (let j = 0; j < length; j++) {
          const e = first + j;
          if (((bits[e >>> 5] >>> (e & 31)) & 1) === 0) d[j] = 0;
        }
      }
      if (s.scaled) {
        const scale = s.scale;
        for (let j = 0; j < length; j++) d[j] *= scale;
      }
      sources[m] = d;
    }
    const o = outBlock;
    if (config.consensus)
      combineConsensus(o, b, sources, weights, length, sparsified, bySum, normalize, applyLambda, lambda32);
    else if (!sparsified)
      combineTaskVectors(o, b, sources, weights, length, normalize, divisor, applyLambda, lambda32);
    else combineSparsified(o, b, sources, weights, length, normalize, divisor, applyLambda, lambda32);
    nonFinite += encodeBlock(o.subarray(0, length), outDtype, out, start);
  });
  return nonFinite;
}

// Range splits: a tensor above the materialization limit (its task vectors are recomputed per pass
// anyway) merges over element ranges on several threads. TIES's cutoff comes from per-range radix
// histograms summed; the entries tied at the cutoff are allotted to ranges in index order (range r
// keeps what the ranges before it left of the tie budget), so every range keeps exactly what the
// whole-tensor pass keeps. DARE's draws (one sequential stream per model) and its L1 sums (float64, in
// index order) cannot be split: they run as one phase over the whole tensor on one thread, which
// answers the kept entries as bits and the rescale factors, and only the merge is split. TIES with
// `rescale` (index-order sums after trimming) merges whole.

/** Whether a tensor of `numel` elements with these parameters splits into ranges with identical bytes. */
export function gtaSplits(
  config: FusedGtaConfig,
  numel: number,
  params: Readonly<Record<string, unknown>>,
  perModel: ReadonlyArray<Readonly<Record<string, unknown>>>,
): boolean {
  if (numel <= materializeLimit) return false;
  const sparse = perModel.some((p) => p.density !== undefined && Number(p.density) < 1);
  if (!sparse || config.sparsification === undefined) return true;
  // DARE's draws and sums run whole on one thread (a phase of their own), the merge in ranges
  if (config.sparsification === 'random') return true;
  return !isTrue(params.rescale as never);
}

/** One phase of a range-split merge on this thread (see gtaSplits). */
export function runGtaPhase(
  config: FusedGtaConfig,
  ctx: EncodedMergeContext,
  phase: RangePhase,
): RangeAnswer {
  const prepared = prepare(config, ctx);
  const { base, n, states } = prepared;
  if (phase.kind === 'merge') {
    if (states.length === 0) return encodeBase(ctx, base, phase.from, phase.to);
    for (const [m, s] of states.entries()) {
      if (s.kind === 'top-k') {
        s.threshold = phase.cutoffs[m].threshold;
        s.tiesLeft = phase.cutoffs[m].tiesLeft;
      }
      const kept = phase.kept?.[m];
      if (s.kind === 'bernoulli') {
        if (!kept)
          throw new Error(`${config.name}: the merge of a range needs the draws phase's kept entries`);
        s.bits = kept.bits;
        s.bitsWord = phase.from >>> 5;
        s.scaled = kept.scaled;
        s.scale = kept.scale;
      }
    }
    return mergePass(config, ctx, prepared, phase.from, phase.to);
  }
  if (phase.kind === 'draws') {
    drawKeptEntries(states, base, n);
    if (prepared.rescale) setRescale(states);
    return {
      kept: states.map((s) =>
        s.kind === 'bernoulli' ? { bits: s.bits!, scaled: s.scaled, scale: s.scale } : null,
      ),
    };
  }
  const random = states.map((s) => s.kind === 'bernoulli');
  const k = states.map((s) => (s.kind === 'top-k' ? s.k : 0));
  const histograms = states.map((s) => (s.kind === 'top-k' && s.k < n ? new Uint32Array(65536) : null));
  forEachBlockIn(phase.from, phase.to, (start, length) => {
    const b = inputBlock(base, start, length, baseBlock);
    for (const [m, s] of states.entries()) {
      const histogram = histograms[m];
      if (!histogram) continue;
      const bits = keyBits(taskVectorBlock(s, m, start, length, b), length);
      if (phase.kind === 'histogram-high') {
        for (let j = 0; j < length; j++) histogram[(bits[j] & 0x7fffffff) >>> 16]++;
        continue;
      }
      const bin = phase.bins[m];
      for (let j = 0; j < length; j++) {
        const key = bits[j] & 0x7fffffff;
        if (key >>> 16 === bin) histogram[key & 0xffff]++;
      }
    }
  });
  return { k, histograms, random };
}

/** Where the k-th largest key falls in a histogram (counting from the top, after `above` keys). */
function cutoffBin(histograms: Uint32Array[], k: number, above: number): { bin: number; count: number } {
  let count = above;
  let bin = 65535;
  const at = (i: number) => histograms.reduce((sum, h) => sum + h[i], 0);
  while (count + at(bin) < k) count += at(bin--);
  return { bin, count };
}

/** Drives a range-split merge: histograms per range, summed into each model's cutoff, then the merge. */
export async function mergeGtaInRanges(
  ranges: ReadonlyArray<readonly [number, number]>,
  run: (phase: RangePhase) => Promise<RangeAnswer>,
): Promise<number> {
  const statistics = (answers: RangeAnswer[]) => answers as RangeHistograms[];
  const high = statistics(
    await Promise.all(ranges.map(([from, to]) => run({ kind: 'histogram-high', from, to }))),
  );
  const models = high[0].k.length;
  const n = ranges[ranges.length - 1][1];
  // every model keeps everything (no cutoff) unless a histogram says otherwise
  const cutoffs = ranges.map(() => Array.from({ length: models }, () => ({ threshold: 0, tiesLeft: n })));
  const trimmed = [...Array(models).keys()].filter((m) => high[0].histograms[m] !== null);
  if (trimmed.length > 0) {
    const bins = new Array<number>(models).fill(-1);
    const above = new Array<number>(models).fill(0);
    for (const m of trimmed) {
      const { bin, count } = cutoffBin(
        high.map((answer) => answer.histograms[m]!),
        high[0].k[m],
        0,
      );
      bins[m] = bin;
      above[m] = count;
    }
    const low = statistics(
      await Promise.all(ranges.map(([from, to]) => run({ kind: 'histogram-low', from, to, bins }))),
    );
    for (const m of trimmed) {
      const perRange = low.map((answer) => answer.histograms[m]!);
      const { bin: lowBin, count } = cutoffBin(perRange, high[0].k[m], above[m]);
      const threshold = ((bins[m] << 16) | lowBin) >>> 0;
      // the ties at the cutoff are kept in index order: each range gets what the earlier ones left
      let tiesLeft = high[0].k[m] - count;
      for (const [r, histogram] of perRange.entries()) {
        cutoffs[r][m] = { threshold, tiesLeft };
        tiesLeft = Math.max(0, tiesLeft - histogram[lowBin]);
      }
    }
  }
  // DARE: the draws of the whole tensor on one thread, each range's slice of the kept bits to its merge
  let kept: RangeDraws['kept'] | undefined;
  if (high[0].random.some(Boolean))
    kept = ((await run({ kind: 'draws', from: 0, to: n })) as RangeDraws).kept;
  const keptIn = (from: number, to: number) =>
    kept?.map((entries) =>
      entries ? { ...entries, bits: entries.bits.slice(from >>> 5, Math.ceil(to / 32)) } : null,
    );
  const counts = await Promise.all(
    ranges.map(([from, to], r) =>
      run({ kind: 'merge', from, to, cutoffs: cutoffs[r], kept: keptIn(from, to) }),
    ),
  );
  return (counts as number[]).reduce((sum, c) => sum + c, 0);
}
