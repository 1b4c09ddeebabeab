// The work for one tensor, run inline or in a worker thread (so a pooled and an unpooled merge run
// exactly the same code). An arena job names where its stored inputs and its encoded output sit in the
// merge's working set (see ring-arena.ts): decoding, merging and encoding all happen here, in place.
import { arrayTypeOf, type DType, numelOf, type TypedArray } from '../../tensors/index.ts';
import {
  decodeIntoFloat32,
  encodeFloat32Into,
  float32ToBF16CountingNonFinite,
} from '../../tensors/float-conversion.ts';
import { countNonFinite } from '../kernels/reductions.ts';
import type { EncodedMergeContext, ParameterValue, RangeAnswer, RangePhase, TensorInput } from '../method.ts';
import { randomForTensor } from '../random.ts';
import { getMethod } from '../registry.ts';

export interface TensorJob {
  method: string;
  tensorName: string;
  shape: number[];
  inputs: TensorInput[];
  params: Record<string, ParameterValue>;
  seed: number;
}

export function runTensorJob(job: TensorJob): Float32Array {
  const method = getMethod(job.method);
  if (method?.kind !== 'tensor') throw new Error(`no tensor method ${job.method}`);
  return method.mergeTensor({
    tensorName: job.tensorName,
    shape: job.shape,
    inputs: job.inputs,
    params: job.params,
    random: randomForTensor(job.seed, job.tensorName),
    // Each job's arrays are fresh reads (or pooled decodes) that nothing else keeps.
    inputsWritable: true,
  });
}

/** One input of an arena job: its stored elements at `offset` (dtype null: zeros of the output's shape). */
export interface ArenaInput {
  model: string;
  isBase: boolean;
  params: Record<string, ParameterValue>;
  dtype: DType | null;
  offset: number;
}

/** A merge of one tensor whose inputs and output live in the arena (plain data: posted to workers). */
export interface ArenaTensorJob {
  method: string;
  tensorName: string;
  shape: number[];
  params: Record<string, ParameterValue>;
  seed: number;
  inputs: ArenaInput[];
  outDtype: DType;
  outOffset: number;
  /** One phase of a range-split merge (see RangeSplitMerge); absent: the whole tensor at once. */
  phase?: RangePhase;
}

export function arenaView(buffer: ArrayBufferLike, dtype: DType, offset: number, numel: number): TypedArray {
  return new (arrayTypeOf(dtype))(buffer as ArrayBuffer, offset, numel) as TypedArray;
}

// Decode targets for methods without a fused kernel, kept across jobs (one per input slot) for tensors
// up to this size; larger tensors (embeddings) are rare there and would pin hundreds of MB per worker.
const REUSE_LIMIT_ELEMENTS = 4 * 1024 * 1024;
const decodeSlots: Float32Array[] = [];

function decodeTarget(slot: number, numel: number): Float32Array {
  if (numel > REUSE_LIMIT_ELEMENTS) return new Float32Array(numel);
  let buffer = decodeSlots[slot];
  if (!buffer || buffer.length < numel) {
    buffer = new Float32Array(REUSE_LIMIT_ELEMENTS);
    decodeSlots[slot] = buffer;
  }
  return buffer.subarray(0, numel);
}

/** Encodes float32 results into the job's output; returns how many were NaN or ±Inf. */
export function encodeInto(values: Float32Array, dtype: DType, out: TypedArray): number {
  if (dtype === 'BF16') return float32ToBF16CountingNonFinite(values, out as Uint16Array).nonFinite;
  encodeFloat32Into(values, dtype, out);
  return countNonFinite(values);
}

/**
 * Runs an arena job against `buffer`; returns the output's non-finite count (a statistics phase of a
 * range-split merge: its histograms).
 */
export function runArenaJob(buffer: ArrayBufferLike, job: ArenaTensorJob): RangeAnswer {
  const method = getMethod(job.method);
  if (method?.kind !== 'tensor') throw new Error(`no tensor method ${job.method}`);
  const numel = numelOf(job.shape);
  const out = arenaView(buffer, job.outDtype, job.outOffset, numel);
  if (job.phase && !method.rangeSplit) throw new Error(`${job.method} cannot merge in ranges`);
  if (method.mergeEncoded) {
    const ctx: EncodedMergeContext = {
      tensorName: job.tensorName,
      shape: job.shape,
      inputs: job.inputs.map((input) => ({
        model: input.model,
        isBase: input.isBase,
        params: input.params,
        dtype: input.dtype ?? 'F32',
        data: input.dtype ? arenaView(buffer, input.dtype, input.offset, numel) : null,
      })),
      params: job.params,
      random: randomForTensor(job.seed, job.tensorName),
      outDtype: job.outDtype,
      out,
    };
    return job.phase ? method.rangeSplit!.runPhase(ctx, job.phase) : method.mergeEncoded(ctx);
  }
  // Unfused methods: decode each stored tensor once (even when two inputs name it), merge, encode.
  const decoded = new Map<number, Float32Array>();
  const inputs: TensorInput[] = job.inputs.map((input, slot) => {
    let data: Float32Array;
    if (!input.dtype) data = decodeTarget(slot, numel).fill(0);
    else {
      data =
        decoded.get(input.offset) ??
        decodeIntoFloat32(
          input.dtype,
          arenaView(buffer, input.dtype, input.offset, numel),
          decodeTarget(slot, numel),
        );
      decoded.set(input.offset, data);
    }
    return { model: input.model, isBase: input.isBase, data, params: input.params };
  });
  const result = runTensorJob({ ...job, inputs });
  if (result.length !== numel) {
    throw new Error(
      `${job.method} returned ${result.length} values for ${job.tensorName} (${numel} expected)`,
    );
  }
  return encodeInto(result, job.outDtype, out);
}
