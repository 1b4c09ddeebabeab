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
import type { EncodedMergeContext, EncodedTensorInput, RandomStream } from './method.ts';
import { isTrue } from './parameters.ts';
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
  before: number;
  after: number;
  scaled: boolean;
  scale: number;
}

/** d[j] = x[j] − b[j], rounded to float32 by the store. */
function subtractInto(d: Float32Array, x: Float32Array, b: Float32Array, length: number): void {
  for (let j = 0; j < length; j++) d[j] = x[j] - b[j];
}

function forEachBlock(n: number, body: (start: number, length: number) => void): void {
  for (let start = 0; start < n; start += BLOCK) body(start, Math.min(BLOCK, n - start));
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
      const d = pooled(deltaBlocks, m, () => new Float32Array(BLOCK));
      subtractInto(
        d,
        inputBlock(
          s.input,
          start,
          length,
          pooled(inputBlocks, m, () => new Float32Array(BLOCK)),
        ),
        b,
        length,
      );
      if (rescale) {
        let before = s.before;
        for (let j = 0; j < length; j++) before += Math.abs(d[j]);
        s.before = before;
      }
      if (s.k >= n) continue;
      const bits = new Uint32Array(d.buffer, 0, length);
      const histogram = histograms[m];
      for (let j = 0; j < length; j++) histogram[(bits[j] & 0x7fffffff) >>> 16]++;
    }
  });
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
      const d = deltaBlocks[m];
      subtractInto(d, inputBlock(s.input, start, length, inputBlocks[m]), b, length);
      const bits = new Uint32Array(d.buffer, 0, length);
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
  const bits = new Uint32Array(d.buffer, 0, length);
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
    if (s.kind === 'bernoulli') {
      s.bits = keptBitsFor(m, n);
      s.bits.fill(0);
    }
  }
  forEachBlock(n, (start, length) => {
    const b = inputBlock(base, start, length, baseBlock);
    const draws = drawBlock.subarray(0, length);
    for (const [m, s] of states.entries()) {
      if (s.kind !== 'bernoulli') continue;
      const d = pooled(deltaBlocks, m, () => new Float32Array(BLOCK));
      subtractInto(
        d,
        inputBlock(
          s.input,
          start,
          length,
          pooled(inputBlocks, m, () => new Float32Array(BLOCK)),
        ),
        b,
        length,
      );
      drawInto(s.random!, draws);
      const bits = s.bits!;
      const keepBelow = s.keepBelow;
      const word = start >>> 5;
      let before = s.before;
      let after = s.after;
      for (let j = 0; j < length; j++) {
        const magnitude = Math.abs(d[j]);
        before += magnitude;
        if (draws[j] < keepBelow) {
          after += magnitude;
          bits[word + (j >>> 5)] |= 1 << (j & 31);
        }
      }
      s.before = before;
      s.after = after;
    }
  });
}

/** mergeGeneralizedTaskArithmetic (for the configurations above) as an encoded merge; returns the non-finite count. */
export function mergeGtaEncoded(config: FusedGtaConfig, ctx: EncodedMergeContext): number {
  const base = ctx.inputs.find((input) => input.isBase);
  if (!base) throw new Error(`${config.name} needs a base model`);
  const n = ctx.out.length;
  const { out, outDtype } = ctx;
  const models = ctx.inputs.map((input, index) => ({ input, index })).filter(({ input }) => !input.isBase);
  let nonFinite = 0;
  if (models.length === 0) {
    forEachBlock(n, (start, length) => {
      nonFinite += encodeBlock(inputBlock(base, start, length, baseBlock), outDtype, out, start);
    });
    return nonFinite;
  }
  const count = models.length;
  const weights = Float32Array.from(models, ({ input }) => Number(input.params.weight));
  const sparsified = config.sparsification !== undefined;
  const rescale = isTrue(ctx.params.rescale);

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
          const d = deltaBlocks[m];
          subtractInto(d, inputBlock(s.input, start, length, inputBlocks[m]), b, length);
          trimBlock(s, d, length);
          let after = s.after;
          for (let j = 0; j < length; j++) after += Math.abs(d[j]);
          s.after = after;
        }
      });
      for (const [i, s] of trimmed.entries()) s.tiesLeft = ties[i];
    }
    for (const s of states) {
      if (s.kind === 'dense') continue;
      s.scaled = !(s.before < RESCALE_EPS || s.after < RESCALE_EPS);
      s.scale = Math.fround(s.before / s.after);
    }
  }

  const normalize = isTrue(ctx.params.normalize);
  const lambda = Number(ctx.params.lambda ?? 1);
  const applyLambda = lambda !== 1; // mergekit skips the multiply when λ == 1
  const lambda32 = Math.fround(lambda);
  let weightSum = 0;
  for (let m = 0; m < count; m++) weightSum = Math.fround(weightSum + weights[m]);
  const divisor = Math.abs(weightSum) < 1e-8 ? 1 : weightSum;
  const sources: Float32Array[] = new Array(count);
  const bySum = config.consensus === 'sum';

  forEachBlock(n, (start, length) => {
    const b = inputBlock(base, start, length, baseBlock);
    for (let m = 0; m < count; m++) {
      const s = states[m];
      const x = inputBlock(
        s.input,
        start,
        length,
        pooled(inputBlocks, m, () => new Float32Array(BLOCK)),
      );
      if (!sparsified) {
        sources[m] = x;
        continue;
      }
      // The sparsified task vector as sparsify.ts leaves it: δ, trimmed or dropped, then × scale.
      const d = pooled(deltaBlocks, m, () => new Float32Array(BLOCK));
      subtractInto(d, x, b, length);
      if (s.kind === 'top-k') trimBlock(s, d, length);
      else if (s.kind === 'bernoulli') {
        const bits = s.bits!;
        const word = start >>> 5;
        for (let j = 0; j < length; j++) if (((bits[word + (j >>> 5)] >>> (j & 31)) & 1) === 0) d[j] = 0;
      }
      if (s.scaled) {
        const scale = s.scale;
        for (let j = 0; j < length; j++) d[j] *= scale;
      }
      sources[m] = d;
    }
    const o = outBlock;
    if (config.consensus) {
      for (let j = 0; j < length; j++) {
        const bj = b[j];
        let vote = 0;
        let positive = 0;
        let negative = 0;
        let positiveWeight = 0;
        let negativeWeight = 0;
        for (let m = 0; m < count; m++) {
          const d = sparsified ? sources[m][j] : Math.fround(sources[m][j] - bj);
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
        let mixed = vote >= 0 ? positive : negative;
        const voteDivisor = vote >= 0 ? positiveWeight : negativeWeight;
        if (normalize) mixed = Math.fround(mixed / (voteDivisor === 0 ? 1 : voteDivisor));
        if (applyLambda) mixed = Math.fround(mixed * lambda32);
        o[j] = bj + mixed;
      }
    } else if (!sparsified) {
      // task arithmetic: Σ wᵢ(xᵢ − b) in model order, each product and sum rounded
      for (let j = 0; j < length; j++) {
        const bj = b[j];
        let mixed = Math.fround(weights[0] * Math.fround(sources[0][j] - bj));
        for (let m = 1; m < count; m++)
          mixed = Math.fround(mixed + Math.fround(weights[m] * Math.fround(sources[m][j] - bj)));
        if (normalize) mixed = Math.fround(mixed / divisor);
        if (applyLambda) mixed = Math.fround(mixed * lambda32);
        o[j] = bj + mixed;
      }
    } else {
      for (let j = 0; j < length; j++) {
        let mixed = Math.fround(weights[0] * sources[0][j]);
        for (let m = 1; m < count; m++) mixed = Math.fround(mixed + Math.fround(weights[m] * sources[m][j]));
        if (normalize) mixed = Math.fround(mixed / divisor);
        if (applyLambda) mixed = Math.fround(mixed * lambda32);
        o[j] = b[j] + mixed;
      }
    }
    nonFinite += encodeBlock(o.subarray(0, length), outDtype, out, start);
  });
  return nonFinite;
}
