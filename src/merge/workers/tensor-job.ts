// The work for one tensor, run inline or in a worker thread (so a pooled and an unpooled merge run
// exactly the same code). The pooled form carries the inputs as stored (e.g. BF16 bits) and returns
// the output already encoded, so decoding and encoding run in the workers too.
import { type DType, encodeFromFloat32, type Tensor, type TypedArray } from '../../tensors/index.ts';
import { decodeIntoFloat32, float32ToBF16CountingNonFinite } from '../../tensors/float-conversion.ts';
import { countNonFinite } from '../kernels/reductions.ts';
import type { ParameterValue, TensorInput } from '../method.ts';
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
    // Each job's arrays are fresh reads (or transferred copies) that nothing else keeps.
    inputsWritable: true,
  });
}

/** A job whose inputs are raw stored tensors (null: zeros) and whose result is encoded to outDtype. */
export interface EncodedTensorJob extends Omit<TensorJob, 'inputs'> {
  id: number;
  outDtype: DType;
  inputs: Array<Omit<TensorInput, 'data'> & { tensor: Tensor | null }>;
}

export interface EncodedTensorResult {
  data: TypedArray;
  nonFinite: number;
}

// Decode targets kept across jobs (one per input slot) for tensors up to this size: a fresh
// Float32Array per input per tensor costs page faults and GC that rival the decode itself. Larger
// tensors (embeddings) are rare and would pin hundreds of MB per worker, so they stay per job.
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

export function runEncodedTensorJob(job: EncodedTensorJob): EncodedTensorResult {
  const numel = job.shape.reduce((a, b) => a * b, 1);
  // One decoded array per stored tensor, even when two inputs name the same one.
  const decoded = new Map<Tensor, Float32Array>();
  const inputs: TensorInput[] = job.inputs.map(({ tensor, ...rest }, slot) => {
    let data: Float32Array;
    if (!tensor) data = decodeTarget(slot, numel).fill(0);
    else {
      data = decoded.get(tensor) ?? decodeIntoFloat32(tensor.dtype, tensor.data, decodeTarget(slot, numel));
      decoded.set(tensor, data);
    }
    return { ...rest, data };
  });
  const out = runTensorJob({ ...job, inputs });
  if (out.length !== numel) {
    throw new Error(`${job.method} returned ${out.length} values for ${job.tensorName} (${numel} expected)`);
  }
  if (job.outDtype === 'BF16') return float32ToBF16CountingNonFinite(out);
  return { data: encodeFromFloat32(out, job.outDtype), nonFinite: countNonFinite(out) };
}
