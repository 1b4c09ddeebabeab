// What every data-driven method receives and returns: the loaded inputs, each task's validation data,
// the resolved parameters, the seed and a progress callback; a merged model (or a writer for an adapter)
// and a report of what it learned (coefficients, objective history) for the job result.
import type * as tf from '@tensorflow/tfjs';
import type { ParameterValue } from '../../merge/index.ts';
import type { ParamStore } from '../../model/params.ts';
import type { Dataset } from '../../model/train/dataset.ts';
import type { TaskHead } from '../heads.ts';
import type { DataDrivenInputs } from './merge-inputs.ts';

export interface TaskData {
  name: string;
  /** The task's validation split (the method reads labels only when it declares labeled data). */
  validation: Dataset;
  /** The head the task reads through in place of its input's own (a stored head, another artifact's). */
  head?: TaskHead | null;
}

export interface MethodRun {
  inputs: DataDrivenInputs;
  tasks: readonly TaskData[];
  params: Readonly<Record<string, ParameterValue>>;
  perModel: ReadonlyArray<Readonly<Record<string, ParameterValue>>>;
  seed: number;
  signal?: AbortSignal;
  /** Work done so far out of the method's total (evaluations, steps or examples). */
  progress(done: number, total: number): void;
}

/** What a method learned, for the job result and the report. */
export interface DataDrivenReport {
  method: string;
  /** Examples read per task, in task order. */
  examples: number[];
  /** Learned per-input coefficients (LoraHub weights, AdaMerging task-wise λ or the mean of layer-wise λ). */
  coefficients?: number[];
  /** AdaMerging layer-wise: λ per input per tensor. */
  layerCoefficients?: Array<{ tensor: string; lambdas: number[] }>;
  /** The objective along the run (LoraHub evaluations, AdaMerging steps). */
  objective?: Array<{ step: number; value: number }>;
  /** Anything else worth recording (e.g. modules merged in closed form). */
  details?: Record<string, unknown>;
}

export type MethodOutput =
  | { kind: 'model'; store: ParamStore; report: DataDrivenReport }
  | { kind: 'adapter'; write(outDir: string): Promise<string[]>; report: DataDrivenReport; dispose(): void };

export function checkAborted(signal: AbortSignal | undefined): void {
  if (signal?.aborted) throw new Error('merge stopped');
}

/** Disposes every tensor of a map. */
export function disposeAll(tensors: Iterable<tf.Tensor>): void {
  for (const t of tensors) t.dispose();
}
