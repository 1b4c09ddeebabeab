// Runs a plan to a checkpoint folder: the tensors through the pipelined, pooled loop (pipeline.ts), or
// one at a time through an override for delta-space merges; then the JSON files beside them. Checks
// the signal between tensors; on abort or any error removes everything it wrote.
import { mkdir, readdir, rm, writeFile } from 'node:fs/promises';
import { availableParallelism } from 'node:os';
import path from 'node:path';
import { CheckpointWriter, encodeFromFloat32, type TypedArray, writeSafetensors } from '../tensors/index.ts';
import { countNonFinite } from './kernels/reductions.ts';
import { MergeCancelledError, MergePlanError } from './errors.ts';
import { releaseFusedScratch } from './fused-gta.ts';
import { releaseScratch } from './kernels/scratch.ts';
import type { TensorMergeMethod } from './method.ts';
import { recipeOutputDtype } from './plan-common.ts';
import type { MergePlan, PlannedTensor } from './plan-types.ts';
import type { TensorRead, TensorSource } from './sources.ts';
import { writeTensorsPipelined } from './pipeline.ts';
import { runTensorJob, type TensorJob } from './workers/tensor-job.ts';

export interface MergeProgressEvent {
  phase: 'merging';
  tensorsDone: number;
  tensorsTotal: number;
}

export interface ExecuteOptions {
  outDir: string;
  signal?: AbortSignal;
  onProgress?: (progress: MergeProgressEvent) => void;
  maxShardBytes?: number;
  /**
   * Worker threads for per-tensor merges, which decode-merge-encode in the merge's shared working set
   * while the main thread reads and writes (results are identical either way); 0 merges inline.
   * Default (callers pass config.mergeWorkers, LORAFUSE_MERGE_WORKERS): one per core (at most 8) for
   * merges of 32M+ elements, and inline for small merges or on one core.
   */
  workers?: number;
  /**
   * Elementwise tensors (copies; methods linear in their inputs) above this many elements are read,
   * merged and written in pieces of whole rows (default 1M elements); the bytes are the same.
   */
  pieceElements?: number;
}

const POOL_THRESHOLD_ELEMENTS = 32 * 1024 * 1024;

function poolSize(plan: MergePlan, requested: number | undefined): number {
  if (plan.method.kind !== 'tensor') return 0;
  let size = requested;
  if (size === undefined) {
    const elements = plan.tensors
      .filter((t) => t.action === 'merge')
      .reduce((sum, t) => sum + t.shape.reduce((a, b) => a * b, 1), 0);
    // The main thread only reads and writes, so every core gets a worker; small merges stay inline,
    // where starting workers would cost more than they save.
    const cores = availableParallelism();
    size = elements >= POOL_THRESHOLD_ELEMENTS && cores >= 2 ? Math.min(cores, 8) : 0;
  }
  return Math.max(0, Math.floor(size));
}

export interface MergeResult {
  kind: 'model' | 'adapter';
  /** Files written, relative to outDir. */
  files: string[];
  diagnostics?: Record<string, unknown>;
}

/** Hooks the delta-space path (lora space delta, peft_* methods) plugs into the tensor loop. */
export interface TensorOverride {
  /** Called for a planned tensor; returns replacement float32 data, or undefined to run the plan's action. */
  tensor(
    planned: PlannedTensor,
    read: (r: TensorRead) => Promise<Float32Array>,
  ): Promise<Float32Array | undefined>;
}

function throwIfAborted(signal: AbortSignal | undefined): void {
  if (signal?.aborted) throw new MergeCancelledError();
}

async function prepareOutputDir(outDir: string): Promise<boolean> {
  try {
    const entries = await readdir(outDir);
    if (entries.length > 0) {
      throw new MergePlanError('output_not_empty', `output folder ${outDir} is not empty`);
    }
    return false;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
    await mkdir(outDir, { recursive: true });
    return true;
  }
}

/** Reads a tensor as float32; a null source reads zeros of the planned shape. */
function makeReader(numel: number) {
  const pending = new Map<TensorSource | null, Map<string, Promise<Float32Array>>>();
  return (read: TensorRead): Promise<Float32Array> => {
    let byName = pending.get(read.source);
    if (!byName) {
      byName = new Map();
      pending.set(read.source, byName);
    }
    let promise = byName.get(read.name);
    if (!promise) {
      promise = read.source ? read.source.readFloat32(read.name) : Promise.resolve(new Float32Array(numel));
      byName.set(read.name, promise);
    }
    return promise;
  };
}

function mergeFailed(method: TensorMergeMethod, planned: PlannedTensor, error: unknown): MergePlanError {
  return new MergePlanError(
    'merge_failed',
    `${method.name} failed on ${planned.name}: ${(error as Error).message}`,
    {
      tensor: planned.name,
    },
  );
}

interface OutputData {
  data: TypedArray;
  nonFinite: number;
}

async function mergeInline(
  plan: MergePlan,
  method: TensorMergeMethod,
  planned: PlannedTensor,
  read: (r: TensorRead) => Promise<Float32Array>,
): Promise<OutputData> {
  const data = await Promise.all(planned.reads.map(read));
  const job: TensorJob = {
    method: method.name,
    tensorName: planned.name,
    shape: planned.shape,
    inputs: plan.inputs.map((input, i) => ({
      model: input.ref,
      isBase: input.isBase,
      data: data[i],
      params: planned.perModel[i],
    })),
    params: planned.global,
    seed: plan.seed,
  };
  let out: Float32Array;
  try {
    out = runTensorJob(job);
  } catch (error) {
    throw mergeFailed(method, planned, error);
  }
  const numel = planned.shape.reduce((a, b) => a * b, 1);
  if (out.length !== numel) {
    throw mergeFailed(method, planned, new Error(`returned ${out.length} values (${numel} expected)`));
  }
  return { data: encodeFromFloat32(out, planned.dtype), nonFinite: countNonFinite(out) };
}

async function outputData(
  plan: MergePlan,
  planned: PlannedTensor,
  override: TensorOverride | undefined,
): Promise<OutputData> {
  const numel = planned.shape.reduce((a, b) => a * b, 1);
  const read = makeReader(numel);
  const replaced = override ? await override.tensor(planned, read) : undefined;
  if (replaced)
    return { data: encodeFromFloat32(replaced, planned.dtype), nonFinite: countNonFinite(replaced) };
  if (planned.action === 'copy') {
    const source = planned.reads[0];
    if (!source.source)
      return { data: encodeFromFloat32(new Float32Array(numel), planned.dtype), nonFinite: 0 };
    const raw = await source.source.read(source.name);
    if (raw.dtype === planned.dtype) return { data: raw.data, nonFinite: 0 };
    return {
      data: encodeFromFloat32(await source.source.readFloat32(source.name), planned.dtype),
      nonFinite: 0,
    };
  }
  if (plan.method.kind !== 'tensor') throw new Error(`${plan.method.name} cannot merge whole tensors`);
  return mergeInline(plan, plan.method, planned, read);
}

/** Writes the plan's tensors into outDir; `extraFiles` (config JSON and the like) are written after them. */
export async function writeMergedCheckpoint(
  plan: MergePlan,
  options: ExecuteOptions,
  hooks: {
    override?: TensorOverride;
    extraFiles?: () => Promise<Record<string, string>>;
    diagnostics?: Record<string, unknown>;
  } = {},
): Promise<MergeResult> {
  const { outDir, signal, onProgress } = options;
  throwIfAborted(signal);
  const createdDir = await prepareOutputDir(outDir);
  let writer: CheckpointWriter | undefined;
  const extraWritten: string[] = [];
  const nonFinite: Record<string, number> = {};
  try {
    writer = await CheckpointWriter.create(
      outDir,
      plan.tensors.map((t) => ({ name: t.name, dtype: t.dtype, shape: t.shape })),
      { maxShardBytes: options.maxShardBytes, stem: plan.output.stem },
    );
    const total = plan.tensors.length;
    onProgress?.({ phase: 'merging', tensorsDone: 0, tensorsTotal: total });
    const progress = (written: number) =>
      onProgress?.({ phase: 'merging', tensorsDone: written, tensorsTotal: total });
    if (hooks.override) {
      // Delta-space merges (LoRA delta space, peft_*): tensor by tensor through the override.
      for (let i = 0; i < total; i++) {
        throwIfAborted(signal);
        const planned = plan.tensors[i];
        const { data, nonFinite: bad } = await outputData(plan, planned, hooks.override);
        if (bad > 0) nonFinite[planned.name] = bad;
        throwIfAborted(signal);
        await writer.write(planned.name, data);
        progress(i + 1);
      }
    } else {
      Object.assign(
        nonFinite,
        await writeTensorsPipelined(plan, writer, {
          workers: poolSize(plan, options.workers),
          pieceElements: options.pieceElements,
          signal,
          onWritten: progress,
        }),
      );
    }
    throwIfAborted(signal);
    const files = await writer.close();
    const extras = hooks.extraFiles ? await hooks.extraFiles() : {};
    for (const [file, text] of Object.entries(extras)) {
      extraWritten.push(file);
      await writeFile(path.join(outDir, file), text);
    }
    if (plan.output.initTensors && plan.output.initTensors.length > 0) {
      extraWritten.push('lorafuse_init.safetensors');
      const tensors = [];
      for (const read of plan.output.initTensors) {
        const tensor = await read.source!.read(read.name);
        tensors.push({ name: read.name, ...tensor });
      }
      await writeSafetensors(path.join(outDir, 'lorafuse_init.safetensors'), tensors);
    }
    const diagnostics: Record<string, unknown> = { ...(hooks.diagnostics ?? {}) };
    if (Object.keys(nonFinite).length > 0) diagnostics.nonFiniteValues = nonFinite;
    if (plan.warnings.length > 0) diagnostics.warnings = plan.warnings;
    return {
      kind: plan.output.kind,
      files: [...files, ...extraWritten].sort(),
      diagnostics: Object.keys(diagnostics).length > 0 ? diagnostics : undefined,
    };
  } catch (error) {
    await writer?.abort().catch(() => undefined);
    await Promise.allSettled(extraWritten.map((file) => rm(path.join(outDir, file), { force: true })));
    if (createdDir) await rm(outDir, { recursive: true, force: true }).catch(() => undefined);
    if (signal?.aborted && !(error instanceof MergeCancelledError)) throw new MergeCancelledError();
    throw error;
  } finally {
    releaseScratch();
    releaseFusedScratch();
  }
}

export function jsonFile(value: unknown): string {
  return `${JSON.stringify(value, null, 2)}\n`;
}

const TORCH_DTYPE: Record<string, string> = {
  F32: 'float32',
  F16: 'float16',
  BF16: 'bfloat16',
  F64: 'float64',
  F8_E4M3: 'float8_e4m3fn',
  F8_E5M2: 'float8_e5m2',
};

/** config.json of the output model: the base's (or first model's), with torch_dtype following out_dtype. */
export function outputModelConfig(plan: MergePlan): Record<string, unknown> | undefined {
  const config = plan.output.config;
  if (!config) return undefined;
  const dtype = recipeOutputDtype(plan.recipe);
  return dtype && 'torch_dtype' in config ? { ...config, torch_dtype: TORCH_DTYPE[dtype] } : config;
}
