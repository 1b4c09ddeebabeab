import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { type Architecture, architectureFor, type ModelConfig } from './architectures/index.ts';
import { type HostTensor, readSafetensors } from './io/safetensors-lite.ts';
import { ParamStore } from './params.ts';

/** A Hugging Face model folder loaded onto the tfjs backend. */
export interface LoadedModel {
  dir: string;
  config: ModelConfig;
  architecture: Architecture;
  params: ParamStore;
  dispose(): void;
}

/**
 * Reads config.json and model.safetensors (or the shards listed in model.safetensors.index.json). `extraWeights`
 * adds tensors from other files (a CLIP task head); later files win.
 */
export async function loadModel(
  dir: string,
  options: { extraWeights?: string[] } = {},
): Promise<LoadedModel> {
  const config = JSON.parse(await readFile(path.join(dir, 'config.json'), 'utf8')) as ModelConfig;
  if (typeof config.model_type !== 'string') throw new Error(`${dir}/config.json has no model_type`);
  const architecture = architectureFor(config.model_type);
  const weights = await readCheckpointFolder(dir);
  for (const file of options.extraWeights ?? []) {
    for (const [name, t] of (await readSafetensors(file)).tensors) weights.set(name, t);
  }
  const params = ParamStore.fromHost(weights, architecture.linearModules(config));
  return { dir, config, architecture, params, dispose: () => params.dispose() };
}

export async function readCheckpointFolder(dir: string, stem = 'model'): Promise<Map<string, HostTensor>> {
  const indexPath = path.join(dir, `${stem}.safetensors.index.json`);
  let files: string[];
  try {
    const index = JSON.parse(await readFile(indexPath, 'utf8')) as { weight_map: Record<string, string> };
    files = [...new Set(Object.values(index.weight_map))];
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
    files = [`${stem}.safetensors`];
  }
  const weights = new Map<string, HostTensor>();
  for (const file of files) {
    for (const [name, t] of (await readSafetensors(path.join(dir, file))).tensors) weights.set(name, t);
  }
  return weights;
}
