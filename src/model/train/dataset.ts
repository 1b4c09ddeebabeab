// Labelled dataset files (HF input names, labels, task metadata): read, written, split and sliced by rows.
import { ModelInputError } from '../errors.ts';
import { parseBoundedJson } from '../../tensors/index.ts';
import type { HostTensor } from '../io/host-tensors.ts';
import { readSafetensors, writeSafetensorsFile } from '../io/host-tensors.ts';
import { seededUniform, shuffled } from '../random.ts';

/** A labelled dataset file: model inputs under HF names, labels I64 [N], task/split/class names in metadata. */
export interface Dataset {
  inputs: Map<string, HostTensor>;
  labels: Int32Array;
  task: string;
  split: string;
  classNames: string[] | null;
}

const INPUT_NAMES = ['pixel_values', 'input_ids', 'attention_mask', 'token_type_ids'];

export async function readDataset(filePath: string): Promise<Dataset> {
  const { tensors, metadata } = await readSafetensors(filePath);
  const labels = tensors.get('labels');
  if (labels?.dtype !== 'I64' || labels.shape.length !== 1) {
    throw new ModelInputError(`${filePath}: a dataset needs labels I64 [N]`);
  }
  const inputs = new Map<string, HostTensor>();
  for (const name of INPUT_NAMES) {
    const t = tensors.get(name);
    if (!t) continue;
    if (t.shape[0] !== labels.shape[0])
      throw new ModelInputError(`${filePath}: ${name} has ${t.shape[0]} rows, labels ${labels.shape[0]}`);
    inputs.set(name, t);
  }
  if (!inputs.has('pixel_values') && !inputs.has('input_ids')) {
    throw new ModelInputError(`${filePath}: a dataset needs pixel_values or input_ids`);
  }
  return {
    inputs,
    labels: Int32Array.from(labels.data as BigInt64Array, (v) => Number(v)),
    task: metadata.task ?? 'task',
    split: metadata.split ?? 'train',
    classNames: metadata.class_names ? (parseBoundedJson(metadata.class_names) as string[]) : null,
  };
}

export async function writeDataset(filePath: string, dataset: Dataset): Promise<void> {
  const entries: Array<[string, HostTensor]> = [...dataset.inputs.entries()];
  const labels = BigInt64Array.from(dataset.labels, (v) => BigInt(v));
  entries.push(['labels', { dtype: 'I64', shape: [labels.length], data: labels }]);
  const metadata: Record<string, string> = { task: dataset.task, split: dataset.split };
  if (dataset.classNames) metadata.class_names = JSON.stringify(dataset.classNames);
  await writeSafetensorsFile(filePath, entries, metadata);
}

export function datasetSize(dataset: Dataset): number {
  return dataset.labels.length;
}

/** The rows at `indices` (copied), same names and metadata. */
export function selectRows(dataset: Dataset, indices: ArrayLike<number>): Dataset {
  const inputs = new Map<string, HostTensor>();
  for (const [name, t] of dataset.inputs) inputs.set(name, gatherRows(t, indices));
  return { ...dataset, inputs, labels: Int32Array.from(indices, (i) => dataset.labels[i]) };
}

export function gatherRows(t: HostTensor, indices: ArrayLike<number>): HostTensor {
  const per = t.shape.slice(1).reduce((a, b) => a * b, 1);
  const data =
    t.dtype === 'F32' ? new Float32Array(indices.length * per) : new BigInt64Array(indices.length * per);
  for (let i = 0; i < indices.length; i++) {
    const row = indices[i];
    (data as Float32Array).set((t.data as Float32Array).subarray(row * per, (row + 1) * per), i * per);
  }
  return { dtype: t.dtype, shape: [indices.length, ...t.shape.slice(1)], data };
}

/** Seeded hold-out: a shuffled `fraction` of the rows becomes the validation split (never the test split). */
export function splitValidation(
  dataset: Dataset,
  fraction: number,
  seed: number,
): { train: Dataset; validation: Dataset | null } {
  const n = datasetSize(dataset);
  const held = Math.floor(n * fraction);
  if (held === 0) return { train: dataset, validation: null };
  const order = shuffled(n, seededUniform(seed ^ 0x5eed));
  const validation = { ...selectRows(dataset, order.slice(0, held)), split: 'validation' };
  return { train: selectRows(dataset, order.slice(held)), validation };
}
