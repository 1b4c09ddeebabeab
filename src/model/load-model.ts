// Loads a Hugging Face model folder (config.json + safetensors) onto the tfjs backend for its architecture.
import { ModelInputError } from './errors.ts';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { type Architecture, architectureFor, type ModelConfig } from './architectures/index.ts';
import { parseBoundedJson } from '../tensors/index.ts';
import { readCheckpoint, readSafetensors } from './io/host-tensors.ts';
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
  const config = parseBoundedJson(await readFile(path.join(dir, 'config.json'), 'utf8')) as ModelConfig;
  if (typeof config.model_type !== 'string')
    throw new ModelInputError(`${dir}/config.json has no model_type`);
  const architecture = architectureFor(config.model_type);
  const weights = await readCheckpoint(dir);
  for (const file of options.extraWeights ?? []) {
    for (const [name, t] of (await readSafetensors(file)).tensors) weights.set(name, t);
  }
  const params = ParamStore.fromHost(weights, architecture.linearModules(config));
  return { dir, config, architecture, params, dispose: () => params.dispose() };
}
