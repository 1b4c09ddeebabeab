// Task heads: how one task reads a shared body. A head is a linear map (weight [classes, features], bias
// [classes]) put in place of the model's `classifier`; it comes from an adapter's modules_to_save, a stored
// head (head.safetensors), a model's own classifier, or a merged artifact's per-task heads file. Heads are
// never averaged: each task keeps its own.
import * as tf from '@tensorflow/tfjs';
import {
  type HostTensor,
  readCheckpoint,
  readSafetensors,
  writeSafetensorsFile,
} from '../model/io/host-tensors.ts';

/** The module a head replaces in every architecture lorafuse runs (vit, clip_vision_model, bert, mlp). */
export const HEAD_MODULE = 'classifier';
const PEFT_PREFIX = 'base_model.model.';

export interface TaskHead {
  weight: HostTensor;
  bias: HostTensor | null;
}

function headOf(tensors: Map<string, HostTensor>, weightKey: string, biasKey: string): TaskHead | null {
  const weight = tensors.get(weightKey);
  if (!weight) return null;
  if (weight.shape.length !== 2)
    throw new Error(`${weightKey} is [${weight.shape}], not [classes, features]`);
  return { weight, bias: tensors.get(biasKey) ?? null };
}

/** An adapter's modules_to_save head (adapter_model.safetensors), or null when it carries none. */
export async function readAdapterHead(adapterWeightsFile: string): Promise<TaskHead | null> {
  const { tensors } = await readSafetensors(adapterWeightsFile);
  return headOf(tensors, `${PEFT_PREFIX}${HEAD_MODULE}.weight`, `${PEFT_PREFIX}${HEAD_MODULE}.bias`);
}

/** A stored head (head.safetensors: weight, optional bias). */
export async function readStoredHead(headFile: string): Promise<TaskHead> {
  const { tensors } = await readSafetensors(headFile);
  const head = headOf(tensors, 'weight', 'bias');
  if (!head) throw new Error(`${headFile} has no weight tensor`);
  return head;
}

/** A model folder's own classifier. */
export async function readModelHead(modelDir: string): Promise<TaskHead | null> {
  const tensors = await readCheckpoint(modelDir);
  return headOf(tensors, `${HEAD_MODULE}.weight`, `${HEAD_MODULE}.bias`);
}

/** Writes lorafuse_heads.safetensors: `<task>.weight` and `<task>.bias` per task, the task names in metadata. */
export async function writeTaskHeads(
  file: string,
  heads: Array<{ task: string; head: TaskHead }>,
): Promise<void> {
  const entries: Array<[string, HostTensor]> = [];
  for (const { task, head } of heads) {
    entries.push([`${task}.weight`, head.weight]);
    if (head.bias) entries.push([`${task}.bias`, head.bias]);
  }
  await writeSafetensorsFile(file, entries, { tasks: JSON.stringify(heads.map((h) => h.task)) });
}

/** Reads lorafuse_heads.safetensors back: task name → head. */
export async function readTaskHeads(file: string): Promise<Map<string, TaskHead>> {
  const { tensors, metadata } = await readSafetensors(file);
  const tasks = JSON.parse(metadata.tasks ?? '[]') as string[];
  const out = new Map<string, TaskHead>();
  for (const task of tasks) {
    const head = headOf(tensors, `${task}.weight`, `${task}.bias`);
    if (head) out.set(task, head);
  }
  return out;
}

/**
 * The forward-context overrides that make a model read through `head` (linear weights are stored transposed,
 * [in, out]). A head without bias gets a zero bias, so the model's own classifier bias never leaks in.
 */
export function headOverrides(head: TaskHead): Map<string, tf.Tensor> {
  const [classes, features] = head.weight.shape;
  const [weight, bias] = tf.tidy(() => [
    tf.transpose(tf.tensor2d(head.weight.data as Float32Array, [classes, features])),
    head.bias ? tf.tensor1d(head.bias.data as Float32Array) : tf.zeros([classes]),
  ]);
  return new Map<string, tf.Tensor>([
    [`${HEAD_MODULE}.weight`, weight],
    [`${HEAD_MODULE}.bias`, bias],
  ]);
}
