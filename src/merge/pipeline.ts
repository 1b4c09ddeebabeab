// The tensor loop of a merge at memory speed: one working set (a ring arena, see workers/ring-arena.ts)
// allocated once per merge and sized by the plan's largest tensor; each tensor's stored inputs are
// pread straight into its slot, merged in place (worker threads, or this thread) into the slot's
// encoded output, and written from there, in plan order. While one tensor merges, the next ones are
// being read (libuv's thread pool) and the previous one written, so the cores never wait on the disk.
import { type CheckpointWriter, DTYPE_BYTES, numelOf, type TypedArray } from '../tensors/index.ts';
import { decodeIntoFloat32 } from '../tensors/float-conversion.ts';
import { MergeCancelledError, MergePlanError } from './errors.ts';
import type { MergePlan, PlannedTensor } from './plan-types.ts';
import type { TensorRead, TensorSource } from './sources.ts';
import { MergeWorkerPool } from './workers/pool.ts';
import { alignSlot, RingArena } from './workers/ring-arena.ts';
import {
  type ArenaInput,
  type ArenaTensorJob,
  arenaView,
  encodeInto,
  runArenaJob,
} from './workers/tensor-job.ts';

/** Besides the largest slot, the ring keeps room for at least this much of the tensors that follow it. */
const LOOKAHEAD_BYTES = 128 * 1024 * 1024;

export interface PipelineOptions {
  /** Worker threads merging tensors; 0 merges on this thread (reads and writes still overlap). */
  workers: number;
  signal?: AbortSignal;
  /** Called after each tensor is written, with how many are written so far. */
  onWritten?: (written: number) => void;
}

/** Where one tensor's data sits in the arena. */
interface SlotLayout {
  bytes: number;
  /** Distinct stored tensors to read, each at its offset within the slot. */
  reads: Array<{ source: TensorSource; name: string; offset: number; bytes: number }>;
  /** Per planned read: its offset (shared by reads of the same stored tensor), or null for zeros. */
  inputOffsets: Array<number | null>;
  outOffset: number;
}

function storedInfo(read: TensorRead) {
  return read.source ? read.source.info(read.name) : undefined;
}

function layoutOf(planned: PlannedTensor): SlotLayout {
  const numel = numelOf(planned.shape);
  const outBytes = numel * DTYPE_BYTES[planned.dtype];
  const reads: SlotLayout['reads'] = [];
  const inputOffsets: Array<number | null> = [];
  let bytes = 0;
  for (const read of planned.reads) {
    if (!read.source) {
      inputOffsets.push(null);
      continue;
    }
    const existing = reads.find((r) => r.source === read.source && r.name === read.name);
    if (existing) {
      inputOffsets.push(existing.offset);
      continue;
    }
    const info = read.source.info(read.name);
    if (info.numel !== numel) {
      throw new MergePlanError(
        'merge_failed',
        `${read.name} holds ${info.numel} values, ${planned.name} needs ${numel}`,
        { tensor: planned.name },
      );
    }
    reads.push({ source: read.source, name: read.name, offset: bytes, bytes: info.byteLength });
    inputOffsets.push(bytes);
    bytes += alignSlot(info.byteLength);
  }
  // A copy in its own dtype is written straight from where it was read.
  const copyAsStored =
    planned.action === 'copy' && reads.length === 1 && storedInfo(planned.reads[0])?.dtype === planned.dtype;
  const outOffset = copyAsStored ? 0 : bytes;
  if (!copyAsStored) bytes += alignSlot(outBytes);
  return { bytes, reads, inputOffsets, outOffset };
}

async function readInto(source: TensorSource, name: string, target: Uint8Array): Promise<void> {
  if (source.readBytesInto) {
    await source.readBytesInto(name, target);
    return;
  }
  const tensor = await source.read(name);
  target.set(new Uint8Array(tensor.data.buffer, tensor.data.byteOffset, tensor.data.byteLength));
}

/** A copy into another dtype, converted in small blocks (no tensor-sized float32 temporary). */
function convertCopy(
  stored: TypedArray,
  storedDtype: PlannedTensor['dtype'],
  out: TypedArray,
  planned: PlannedTensor,
) {
  const block = new Float32Array(Math.min(stored.length, 65536));
  type Sub = { subarray(begin: number, end: number): TypedArray };
  for (let start = 0; start < stored.length; start += block.length) {
    const end = Math.min(stored.length, start + block.length);
    const values = decodeIntoFloat32(
      storedDtype,
      (stored as Sub).subarray(start, end),
      block.subarray(0, end - start),
    );
    encodeInto(values, planned.dtype, (out as Sub).subarray(start, end));
  }
}

function mergeFailed(plan: MergePlan, planned: PlannedTensor, error: unknown): MergePlanError {
  if (error instanceof MergePlanError) return error;
  return new MergePlanError(
    'merge_failed',
    `${plan.method.name} failed on ${planned.name}: ${(error as Error).message}`,
    {
      tensor: planned.name,
    },
  );
}

/**
 * Writes every planned tensor (merges and copies) to `writer` in plan order; returns the non-finite
 * counts of merged tensors that had any.
 */
export async function writeTensorsPipelined(
  plan: MergePlan,
  writer: CheckpointWriter,
  options: PipelineOptions,
): Promise<Record<string, number>> {
  const method = plan.method;
  const layouts = plan.tensors.map(layoutOf);
  const largest = Math.max(0, ...layouts.map((l) => l.bytes));
  const total = layouts.reduce((sum, l) => sum + l.bytes, 0);
  const capacity = Math.min(total, largest + Math.max(largest, LOOKAHEAD_BYTES));
  const arena = new RingArena(capacity, options.workers > 0);
  const pool =
    options.workers > 0 ? new MergeWorkerPool(options.workers, arena.buffer as SharedArrayBuffer) : undefined;
  const nonFinite: Record<string, number> = {};
  // In flight: one tensor per worker merging, one being read, one being written.
  const window = (pool?.size ?? 1) + 2;
  const inFlight: Array<{ index: number; slot: number; result: Promise<number> }> = [];
  let written = 0;

  const start = (index: number, slot: number): Promise<number> => {
    const planned = plan.tensors[index];
    const layout = layouts[index];
    const numel = numelOf(planned.shape);
    const view = (offset: number, length: number) => new Uint8Array(arena.buffer, slot + offset, length);
    const reads = Promise.all(layout.reads.map((r) => readInto(r.source, r.name, view(r.offset, r.bytes))));
    return reads.then(async () => {
      const out = arenaView(arena.buffer, planned.dtype, slot + layout.outOffset, numel);
      if (planned.action === 'copy') {
        const read = planned.reads[0];
        if (!read.source) new Uint8Array(out.buffer, out.byteOffset, out.byteLength).fill(0);
        else if (layout.outOffset !== 0) {
          const dtype = read.source.info(read.name).dtype;
          convertCopy(arenaView(arena.buffer, dtype, slot, numel), dtype, out, planned);
        }
        return 0;
      }
      if (method.kind !== 'tensor') throw new Error(`${method.name} cannot merge whole tensors`);
      const inputs: ArenaInput[] = plan.inputs.map((input, i) => {
        const offset = layout.inputOffsets[i];
        const read = planned.reads[i];
        return {
          model: input.ref,
          isBase: input.isBase,
          params: planned.perModel[i],
          dtype: offset === null || !read.source ? null : read.source.info(read.name).dtype,
          offset: offset === null ? 0 : slot + offset,
        };
      });
      const job: ArenaTensorJob = {
        method: method.name,
        tensorName: planned.name,
        shape: planned.shape,
        params: planned.global,
        seed: plan.seed,
        inputs,
        outDtype: planned.dtype,
        outOffset: slot + layout.outOffset,
      };
      try {
        return pool ? await pool.run(job) : runArenaJob(arena.buffer, job);
      } catch (error) {
        throw mergeFailed(plan, planned, error);
      }
    });
  };

  const writeNext = async () => {
    const next = inFlight.shift()!;
    const planned = plan.tensors[next.index];
    const bad = await next.result;
    if (bad > 0) nonFinite[planned.name] = bad;
    if (options.signal?.aborted) throw new MergeCancelledError();
    const out = arenaView(
      arena.buffer,
      planned.dtype,
      next.slot + layouts[next.index].outOffset,
      numelOf(planned.shape),
    );
    await writer.write(planned.name, out);
    arena.release(next.slot);
    written++;
    options.onWritten?.(written);
  };

  try {
    for (let i = 0; i < plan.tensors.length; i++) {
      if (options.signal?.aborted) throw new MergeCancelledError();
      while (inFlight.length >= window) await writeNext();
      let slot = arena.allocate(layouts[i].bytes);
      while (slot === undefined) {
        await writeNext();
        slot = arena.allocate(layouts[i].bytes);
      }
      const result = start(i, slot);
      result.catch(() => undefined); // awaited in order by writeNext; avoid an early unhandled rejection
      inFlight.push({ index: i, slot, result });
    }
    while (inFlight.length > 0) await writeNext();
  } finally {
    await Promise.allSettled(inFlight.map((entry) => entry.result));
    await pool?.close();
  }
  return nonFinite;
}
