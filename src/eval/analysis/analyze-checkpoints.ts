// Task-vector analysis of stored checkpoints, streamed tensor by tensor: models against their base
// (δᵢ = θᵢ − θ₀ per tensor), or PEFT adapters in parameter space (each factor minus its expansion point,
// zero when unknown) and in delta space (ΔW = s·B·A from the thin factors), with per-module effective ranks.
import { type AdapterModule, describeAdapter, parseAdapterConfig } from '../../merge/lora/adapter.ts';
import { toCheckpointName } from '../../model/lora/module-naming.ts';
import type { Checkpoint } from '../../tensors/index.ts';
import {
  type DeltaFactors,
  deltaInner,
  deltaSingularValues,
  effectiveRank,
  factorsFrom,
} from './lora-delta-stats.ts';
import {
  cosineFromGram,
  meanOffDiagonal,
  TaskVectorAccumulator,
  type TaskVectorStats,
} from './task-vector-stats.ts';

type TensorReader = Pick<Checkpoint, 'names' | 'has' | 'info' | 'readFloat32'>;

export interface AnalysisOptions {
  /** TIES trim before counting sign conflicts (1: no trim). */
  density?: number;
  /** Called after each tensor (models) or module (adapters), for progress and cancellation. */
  onStep?: (done: number, total: number) => void | Promise<void>;
}

export interface DeltaSpaceStats {
  gram: number[][];
  norms: number[];
  cosine: number[][];
  meanOffDiagonalCosine: number;
}

export interface EffectiveRankRow {
  input: string;
  module: string;
  /** The LoRA rank the adapter declares for the module. */
  rank: number;
  effectiveRank: number;
  /** ‖ΔW‖_F of the module (s·B·A). */
  norm: number;
}

export interface CheckpointAnalysis {
  inputs: string[];
  parameters: TaskVectorStats;
  delta?: DeltaSpaceStats;
  effectiveRank?: EffectiveRankRow[];
  /** Tensors left out, with why (a head, a shape that differs between inputs, absent from an input). */
  skipped: Array<{ tensor: string; reason: string }>;
}

export interface ModelAnalysisInput {
  id: string;
  checkpoint: TensorReader;
}

/** Models against a base: every base tensor all inputs share with the base's shape, except `exclude` prefixes (heads). */
export async function analyzeModels(args: {
  base: TensorReader;
  inputs: ModelAnalysisInput[];
  exclude?: string[];
  options?: AnalysisOptions;
}): Promise<CheckpointAnalysis> {
  const { base, inputs } = args;
  const accumulator = new TaskVectorAccumulator(inputs.length, { density: args.options?.density });
  const skipped: CheckpointAnalysis['skipped'] = [];
  const names = base.names();
  let done = 0;
  for (const name of names) {
    done++;
    if ((args.exclude ?? []).some((prefix) => name === prefix || name.startsWith(`${prefix}.`))) {
      skipped.push({ tensor: name, reason: 'task head (heads are never merged)' });
      continue;
    }
    const shape = base.info(name).shape;
    const mismatch = inputs.find(
      (input) => !input.checkpoint.has(name) || !sameShape(input.checkpoint.info(name).shape, shape),
    );
    if (mismatch) {
      skipped.push({
        tensor: name,
        reason: mismatch.checkpoint.has(name)
          ? `${mismatch.id} has shape [${mismatch.checkpoint.info(name).shape}], the base [${shape}]`
          : `absent from ${mismatch.id}`,
      });
      continue;
    }
    const theta0 = await base.readFloat32(name);
    const deltas: Float64Array[] = [];
    for (const input of inputs) {
      const theta = await input.checkpoint.readFloat32(name);
      const delta = new Float64Array(theta.length);
      for (let k = 0; k < theta.length; k++) delta[k] = theta[k] - theta0[k];
      deltas.push(delta);
    }
    accumulator.add(name, deltas);
    await args.options?.onStep?.(done, names.length);
  }
  return { inputs: inputs.map((i) => i.id), parameters: accumulator.result(), skipped };
}

export interface AdapterAnalysisInput {
  id: string;
  config: Record<string, unknown>;
  weights: TensorReader;
  /** lorafuse_init.safetensors: the expansion point (A₀, B₀) under the adapter's own keys. */
  init?: TensorReader;
  extras?: Record<string, unknown>;
}

interface OpenedAdapter {
  input: AdapterAnalysisInput;
  /** Checkpoint module name → the adapter's module. */
  modules: Map<string, AdapterModule>;
  linearized: boolean;
}

/**
 * Adapters: parameter space over every lora_A/lora_B factor (minus the expansion point when the adapter records
 * one), delta space over ΔW = s·B·A per module (L-LoRA: its linearized delta), effective rank per module.
 * modules_to_save (task heads) are left out. Module names in either transformers naming are matched.
 */
export async function analyzeAdapters(args: {
  modelType: string | null;
  inputs: AdapterAnalysisInput[];
  options?: AnalysisOptions;
}): Promise<CheckpointAnalysis> {
  const n = args.inputs.length;
  const opened: OpenedAdapter[] = args.inputs.map((input) => {
    const layout = describeAdapter(parseAdapterConfig(input.config), input.weights);
    const modules = new Map<string, AdapterModule>();
    for (const m of layout.modules) {
      if (m.embedding || m.fanInFanOut) continue; // ΔW layouts differ; not produced by the runtime's adapters
      modules.set(args.modelType ? toCheckpointName(args.modelType, m.module) : m.module, m);
    }
    return { input, modules, linearized: input.extras?.mode === 'llora' && input.init !== undefined };
  });
  const moduleNames = [...new Set(opened.flatMap((a) => [...a.modules.keys()]))].sort();
  const accumulator = new TaskVectorAccumulator(n, { density: args.options?.density });
  const deltaGram = Array.from({ length: n }, () => new Array<number>(n).fill(0));
  const ranks: EffectiveRankRow[] = [];
  const skipped: CheckpointAnalysis['skipped'] = [];
  let done = 0;
  for (const module of moduleNames) {
    done++;
    const factors: Array<DeltaFactors | null> = [];
    for (const side of ['a', 'b'] as const) {
      const deltas = await parameterDeltas(opened, module, side);
      if (typeof deltas === 'string')
        skipped.push({ tensor: `${module}.lora_${side.toUpperCase()}.weight`, reason: deltas });
      else accumulator.add(`${module}.lora_${side.toUpperCase()}.weight`, deltas);
    }
    for (const adapter of opened) factors.push(await deltaFactors(adapter, module));
    for (let i = 0; i < n; i++) {
      const fi = factors[i];
      if (!fi) continue;
      for (let j = i; j < n; j++) {
        const fj = factors[j];
        if (!fj) continue;
        const inner = deltaInner(fi, fj);
        deltaGram[i][j] += inner;
        if (i !== j) deltaGram[j][i] += inner;
      }
      const singular = deltaSingularValues(fi);
      let squares = 0;
      for (const s of singular) squares += s * s;
      ranks.push({
        input: args.inputs[i].id,
        module,
        rank: fi.rank,
        effectiveRank: effectiveRank(singular),
        norm: Math.sqrt(squares),
      });
    }
    await args.options?.onStep?.(done, moduleNames.length);
  }
  const cosine = cosineFromGram(deltaGram);
  return {
    inputs: args.inputs.map((i) => i.id),
    parameters: accumulator.result(),
    delta: {
      gram: deltaGram,
      norms: deltaGram.map((row, i) => Math.sqrt(Math.max(0, row[i]))),
      cosine,
      meanOffDiagonalCosine: meanOffDiagonal(cosine),
    },
    effectiveRank: ranks,
    skipped,
  };
}

/** Every adapter's factor minus its expansion point (zero vector where an adapter lacks the module), or why not. */
async function parameterDeltas(
  opened: OpenedAdapter[],
  module: string,
  side: 'a' | 'b',
): Promise<Float64Array[] | string> {
  let shape: number[] | null = null;
  for (const adapter of opened) {
    const m = adapter.modules.get(module);
    if (!m) continue;
    const s = adapter.input.weights.info(side === 'a' ? m.aKey : m.bKey).shape;
    if (shape && !sameShape(shape, s))
      return `shapes differ between adapters ([${shape}] and [${s}]): ranks differ`;
    shape = s;
  }
  const numel = (shape ?? []).reduce((a, b) => a * b, 1);
  const deltas: Float64Array[] = [];
  for (const adapter of opened) {
    const m = adapter.modules.get(module);
    if (!m) {
      deltas.push(new Float64Array(numel));
      continue;
    }
    const key = side === 'a' ? m.aKey : m.bKey;
    const value = await adapter.input.weights.readFloat32(key);
    const origin = adapter.input.init?.has(key) ? await adapter.input.init.readFloat32(key) : null;
    deltas.push(Float64Array.from(value, (v, k) => v - (origin ? origin[k] : 0)));
  }
  return deltas;
}

/**
 * The module's delta as thin factors. Plain LoRA: s·B·A. L-LoRA (linearized around A₀, B₀):
 * s·[B₀A₀ + (B−B₀)A₀ + B₀(A−A₀)] = s·[B | B₀]·[A₀ ; A−A₀], which is s·B·A₀ when B₀ = 0.
 */
async function deltaFactors(adapter: OpenedAdapter, module: string): Promise<DeltaFactors | null> {
  const m = adapter.modules.get(module);
  if (!m) return null;
  const { weights, init } = adapter.input;
  const a = await weights.readFloat32(m.aKey);
  const b = await weights.readFloat32(m.bKey);
  const aShape = [m.rank, m.inFeatures];
  const bShape = [m.outFeatures, m.rank];
  if (!adapter.linearized || !init?.has(m.aKey) || !init.has(m.bKey)) {
    return factorsFrom(module, m.scaling, m.rank, { shape: bShape, data: b }, { shape: aShape, data: a });
  }
  const a0 = await init.readFloat32(m.aKey);
  const b0 = await init.readFloat32(m.bKey);
  if (b0.every((v) => v === 0)) {
    return factorsFrom(module, m.scaling, m.rank, { shape: bShape, data: b }, { shape: aShape, data: a0 });
  }
  const r = m.rank;
  const bWide = new Float64Array(m.outFeatures * 2 * r);
  for (let o = 0; o < m.outFeatures; o++) {
    for (let k = 0; k < r; k++) {
      bWide[o * 2 * r + k] = b[o * r + k];
      bWide[o * 2 * r + r + k] = b0[o * r + k];
    }
  }
  const aTall = new Float64Array(2 * r * m.inFeatures);
  aTall.set(a0, 0);
  for (let k = 0; k < a.length; k++) aTall[a.length + k] = a[k] - a0[k];
  return factorsFrom(
    module,
    m.scaling,
    m.rank,
    { shape: [m.outFeatures, 2 * r], data: bWide },
    { shape: [2 * r, m.inFeatures], data: aTall },
  );
}

function sameShape(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((v, i) => v === b[i]);
}
