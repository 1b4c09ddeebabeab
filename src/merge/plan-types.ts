// The shape of a merge plan: per-tensor work (which inputs, which parameters) and the output layout.
import type { DType } from '../tensors/index.ts';
import type { AdapterModule } from './lora/adapter.ts';
import type { MergeMethod, ParameterValue } from './method.ts';
import type { Recipe } from './recipe.ts';
import type { TensorRead, TensorSource } from './sources.ts';

export interface PlannedInput {
  /** The reference as written in the recipe (or `expansion point` for an adapter merge's base). */
  ref: string;
  isBase: boolean;
  kind: 'model' | 'adapter' | 'expansion-point';
}

export interface PlannedTensor {
  /** Output name. */
  name: string;
  shape: number[];
  /** Output dtype. */
  dtype: DType;
  /** merge: method over every input; copy: reads[0] written unchanged (converted to dtype when float). */
  action: 'merge' | 'copy';
  /** One per plan input for merge (null source = zeros); one for copy. */
  reads: TensorRead[];
  /** Gradient position (0 for non-layer tensors). */
  t: number;
  global: Record<string, ParameterValue>;
  perModel: Array<Record<string, ParameterValue>>;
  note?: string;
}

/** One LoRA module merged in delta space (or by a peft_* method). */
export interface PlannedModule {
  module: string;
  /** Each adapter's layout of this module, in input order. */
  layouts: AdapterModule[];
  /** Each adapter's weights (lora_A/lora_B are read from here by the layouts' keys). */
  sources: TensorSource[];
  t: number;
  global: Record<string, ParameterValue>;
  perModel: Array<Record<string, ParameterValue>>;
  /** For output 'model': the base weight this module's delta is added to. */
  baseWeight?: string;
}

export interface OutputLayout {
  kind: 'model' | 'adapter';
  /** Checkpoint stem: `model` or `adapter_model`. */
  stem: string;
  /** config.json (models) or adapter_config.json (adapters) to write, when there is one. */
  config?: Record<string, unknown>;
  /** lorafuse.json for adapters. */
  extras?: Record<string, unknown>;
  /** Tensors copied into lorafuse_init.safetensors (the expansion point) for adapters that had one. */
  initTensors?: TensorRead[];
}

export interface MergePlan {
  recipe: Recipe;
  method: MergeMethod;
  inputs: PlannedInput[];
  /** Whole-tensor work: model merges, parameter-space adapter merges, saved modules and copies. */
  tensors: PlannedTensor[];
  /** Delta-space module work (lora.space delta, or adapter methods). */
  modules: PlannedModule[];
  deltaSpace?: { rank: number | 'full'; output: 'adapter' | 'model' };
  output: OutputLayout;
  seed: number;
  layerCount: number;
  layerCountSource: 'config.json' | 'tensor names';
  computeDtype: 'F32';
  memoryEstimateBytes: number;
  warnings: string[];
  /** Everything the planner opened, closed by closePlan. */
  opened: Array<{ close(): Promise<void> }>;
}
