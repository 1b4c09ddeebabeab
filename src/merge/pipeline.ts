// The tensor loop of a merge at memory speed: one working set (a ring arena, see workers/ring-arena.ts)
// allocated once per merge and sized by the plan's largest slot; each tensor's stored inputs are
// pread straight into its slot, merged in place (worker threads, or this thread) into the slot's
// encoded output, and written from there, in plan order. While one tensor merges, the next ones are
// being read (libuv's thread pool) and the previous one written, so the cores never wait on the disk.
// A large tensor whose merge is elementwise (copies, and methods linear in their inputs) goes through
// in pieces of whole rows: each piece is read, merged on whichever worker is free and written in turn,
// so both cores share the embeddings and the working set stays a few pieces, not whole tensors. Large
// tensors of methods with whole-tensor statistics (ties, dare) are read whole and merged in element
// ranges on every worker, in phases (see RangeSplitMerge in method.ts).
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

/**
 * Besides the largest slot, the ring keeps room for the other tensors in flight, up to this much. Every
 * byte of the ring is faulted in once per merge (page faults are most of a merge's kernel time), so it
 * is no larger than the slots in flight need.
 */
const LOOKAHEAD_BYTES = 128 * 1024 * 1024;

/**
 * Elementwise tensors above this many elements are merged in pieces of whole rows up to this size:
 * small enough that a few pieces in flight keep the ring at tens of MB, large enough that a piece's
 * reads, job message and write cost little next to its merge.
 */
const PIECE_ELEMENTS = 1024 * 1024;

/**
 * A large tensor whose method splits it exactly (RangeSplitMerge: TIES's cutoffs from per-range
 * histograms, DARE's draws on one worker then the merge in ranges) merges over this many ranges per
 * worker, so a range can start on whichever worker frees up first.
 */
const RANGES_PER_WORKER = 2;
/** Range boundaries fall on multiples of this many elements (whole cache lines and kernel blocks). */
const RANGE_ALIGN = 65536;

/** [0, n) in up to `parts` ranges of whole RANGE_ALIGN blocks. */
function elementRanges(n: number, parts: number): Array<[number, number]> {
  const per = Math.max(1, Math.ceil(n / RANGE_ALIGN / parts)) * RANGE_ALIGN;
  const ranges: Array<[number, number]> = [];
  for (let from = 0; from < n; from += per) ranges.push([from, Math.min(n, from + per)]);
  return ranges;
}

/** A row range [start, start + numel) of one planned tensor (the whole tensor when it is not split). */
interface Piece {
  index: number;
  start: number;
  numel: number;
  shape: number[];
  whole: boolean;
  last: boolean;
}

export interface PipelineOptions {
  /** Worker threads merging tensors; 0 merges on this thread (reads and writes still overlap). */
  workers: number;
  signal?: AbortSignal;
  /** Elementwise tensors above this many elements go through in row pieces (default PIECE_ELEMENTS). */
  pieceElements?: number;
  /** Called after each tensor is written, with how many are written so far. */
  onWritten?: (written: number) => void;
}

/** Where one tensor's data sits in the arena. */
interface SlotLayout {
  bytes: number;
  /**
   * Distinct stored tensors to read, each at its offset within the slot; fileOffset is where in the
   * stored tensor a piece's bytes start (undefined: the whole tensor).
   */
  reads: Array<{
    source: TensorSource;
    name: string;
    offset: number;
    bytes: number;
    fileOffset: number | undefined;
  }>;
  /** Per planned read: its offset (shared by reads of the same stored tensor), or null for zeros. */
  inputOffsets: Array<number | null>;
  outOffset: number;
}

function storedInfo(read: TensorRead) {
  return read.source ? read.source.info(read.name) : undefined;
}

/** Whether each output element depends only on the same element of the inputs. */
function isElementwise(plan: MergePlan, planned: PlannedTensor): boolean {
  if (planned.action === 'copy') return true;
  const method = plan.method;
  return method.kind === 'tensor' && method.linearInInputs === true && !method.random;
}

/** Splits elementwise tensors above `pieceElements` into row ranges; other tensors stay whole. */
function piecesOf(plan: MergePlan, pieceElements: number): Piece[] {
  const pieces: Piece[] = [];
  for (const [index, planned] of plan.tensors.entries()) {
    const numel = numelOf(planned.shape);
    const rows = planned.shape.length === 0 ? 1 : planned.shape[0];
    const rowElements = rows === 0 ? 0 : numel / rows;
    const rowsPerPiece = Math.max(1, Math.floor(pieceElements / Math.max(1, rowElements)));
    const splittable =
      numel > pieceElements &&
      rowsPerPiece < rows &&
      isElementwise(plan, planned) &&
      planned.reads.every((read) => !read.source || read.source.readBytesInto !== undefined);
    if (!splittable) {
      pieces.push({ index, start: 0, numel, shape: planned.shape, whole: true, last: true });
      continue;
    }
    for (let row = 0; row < rows; row += rowsPerPiece) {
      const count = Math.min(rowsPerPiece, rows - row);
      pieces.push({
        index,
        start: row * rowElements,
        numel: count * rowElements,
        shape: [count, ...planned.shape.slice(1)],
        whole: false,
        last: row + count >= rows,
      });
    }
  }
  return pieces;
}

function layoutOf(planned: PlannedTensor, piece: Piece): SlotLayout {
  const numel = piece.numel;
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
    if (info.numel !== numelOf(planned.shape)) {
      throw new MergePlanError(
        'merge_failed',
        `${read.name} holds ${info.numel} values, ${planned.name} needs ${numelOf(planned.shape)}`,
        { tensor: planned.name },
      );
    }
    const elementBytes = DTYPE_BYTES[info.dtype];
    const pieceBytes = numel * elementBytes;
    reads.push({
      source: read.source,
      name: read.name,
      offset: bytes,
      bytes: pieceBytes,
      fileOffset: piece.whole ? undefined : piece.start * elementBytes,
    });
    inputOffsets.push(bytes);
    bytes += alignSlot(pieceBytes);
  }
  // A copy in its own dtype is written straight from where it was read.
  const copyAsStored =
    planned.action === 'copy' && reads.length === 1 && storedInfo(planned.reads[0])?.dtype === planned.dtype;
  const outOffset = copyAsStored ? 0 : bytes;
  if (!copyAsStored) bytes += alignSlot(outBytes);
  return { bytes, reads, inputOffsets, outOffset };
}

async function readInto(
  source: TensorSource,
  name: string,
  target: Uint8Array,
  fileOffset: number | undefined,
): Promise<void> {
  if (source.readBytesInto) {
    await source.readBytesInto(name, target, fileOffset);
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
  const pieces = piecesOf(plan, options.pieceElements ?? PIECE_ELEMENTS);
  const layouts = pieces.map((piece) => layoutOf(plan.tensors[piece.index], piece));
  const largest = Math.max(0, ...layouts.map((l) => l.bytes));
  const total = layouts.reduce((sum, l) => sum + l.bytes, 0);
  // In flight: one piece per worker merging, one being read, one being written.
  const window = Math.max(1, options.workers) + 2;
  const capacity = Math.min(total, largest + Math.min(LOOKAHEAD_BYTES, (window - 1) * largest));
  const arena = new RingArena(capacity, options.workers > 0);
  const pool =
    options.workers > 0 ? new MergeWorkerPool(options.workers, arena.buffer as SharedArrayBuffer) : undefined;
  const nonFinite: Record<string, number> = {};
  const inFlight: Array<{ index: number; slot: number; result: Promise<number> }> = [];
  let written = 0;

  const start = (index: number, slot: number): Promise<number> => {
    const piece = pieces[index];
    const planned = plan.tensors[piece.index];
    const layout = layouts[index];
    const numel = piece.numel;
    const view = (offset: number, length: number) => new Uint8Array(arena.buffer, slot + offset, length);
    const reads = Promise.all(
      layout.reads.map((r) => readInto(r.source, r.name, view(r.offset, r.bytes), r.fileOffset)),
    );
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
        shape: piece.shape,
        params: planned.global,
        seed: plan.seed,
        inputs,
        outDtype: planned.dtype,
        outOffset: slot + layout.outOffset,
      };
      try {
        // A whole tensor the method can split exactly goes to every worker in ranges (the embeddings
        // of ties and dare_ties, which merge whole otherwise).
        const split = method.rangeSplit;
        if (pool && pool.size > 1 && split?.splits(numel, planned.global, planned.perModel)) {
          const ranges = elementRanges(numel, pool.size * RANGES_PER_WORKER);
          return await split.mergeInRanges(ranges, (phase) => pool.run({ ...job, phase }));
        }
        return (pool ? await pool.run(job) : runArenaJob(arena.buffer, job)) as number;
      } catch (error) {
        throw mergeFailed(plan, planned, error);
      }
    });
  };

  const writeNext = async () => {
    const next = inFlight.shift()!;
    const piece = pieces[next.index];
    const planned = plan.tensors[piece.index];
    const bad = await next.result;
    if (bad > 0) nonFinite[planned.name] = (nonFinite[planned.name] ?? 0) + bad;
    if (options.signal?.aborted) throw new MergeCancelledError();
    const out = arenaView(
      arena.buffer,
      planned.dtype,
      next.slot + layouts[next.index].outOffset,
      piece.numel,
    );
    if (piece.whole) await writer.write(planned.name, out);
    else await writer.writePart(planned.name, out);
    arena.release(next.slot);
    if (!piece.last) return;
    written++;
    options.onWritten?.(written);
  };

  try {
    for (let i = 0; i < pieces.length; i++) {
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
