// PEFT adapter folders: loaded onto a model, and written exactly as PEFT writes them (plus lorafuse's own files).
import { ModelInputError } from '../errors.ts';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { parseBoundedJson } from '../../tensors/index.ts';
import { type HostTensor, readSafetensors, writeSafetensorsFile } from '../io/host-tensors.ts';
import type { LoadedModel } from '../load-model.ts';
import type { LoraModule } from './lora-module.ts';
import { type AdapterNaming, detectNaming, toAdapterName, toCheckpointName } from './module-naming.ts';
import { loraScale, type PeftLoraConfig } from './peft-config.ts';

const PREFIX = 'base_model.model.';

/** lorafuse's own record beside PEFT's two files (lorafuse.json). */
export interface LorafuseExtras {
  format: 'lorafuse-adapter';
  mode: 'lora' | 'llora';
  /** Seed that drew A₀: adapters meant to be merged share it. */
  seed?: number;
  naming: AdapterNaming;
  /** lorafuse_init.safetensors holds the expansion point (lora_A / lora_B at init) under PEFT's key names. */
  init?: string;
  lineage?: Record<string, unknown>;
  training?: Record<string, unknown>;
}

export interface LoadedAdapter {
  config: PeftLoraConfig;
  naming: AdapterNaming;
  extras: LorafuseExtras | null;
  /** Checkpoint module name → LoRA module (tfjs tensors). */
  modules: Map<string, LoraModule>;
  /** modules_to_save weights, keyed as the model's params (linear weights transposed). */
  overrides: Map<string, tf.Tensor>;
  dispose(): void;
}

/**
 * Loads a PEFT LoRA folder onto a model: keys under either transformers naming, scaling per module (alpha/r or
 * alpha/√r, alpha_pattern), modules_to_save as plain keys. An adapter trained here in `llora` mode is loaded
 * linearized around its recorded expansion point unless `asPlainLora`.
 */
export async function loadAdapter(
  dir: string,
  model: LoadedModel,
  options: { asPlainLora?: boolean } = {},
): Promise<LoadedAdapter> {
  const config = parseBoundedJson(
    await readFile(path.join(dir, 'adapter_config.json'), 'utf8'),
  ) as PeftLoraConfig;
  if (config.peft_type !== 'LORA')
    throw new ModelInputError(`${dir}: peft_type ${config.peft_type} is not LORA`);
  if (config.use_dora) throw new ModelInputError(`${dir}: DoRA adapters are not supported`);
  if (config.fan_in_fan_out)
    throw new ModelInputError(`${dir}: fan_in_fan_out (Conv1D) adapters are not supported`);
  const extras = await readExtras(dir);
  const { tensors } = await readSafetensors(path.join(dir, 'adapter_model.safetensors'));
  const init =
    extras?.mode === 'llora' && extras.init && !options.asPlainLora
      ? (await readSafetensors(path.join(dir, extras.init))).tensors
      : null;
  const modelType = model.config.model_type;
  const linear = new Set(model.architecture.linearModules(model.config));
  const modules = new Map<string, LoraModule>();
  const overrides = new Map<string, tf.Tensor>();
  const adapterModules = [...tensors.keys()]
    .filter((k) => k.endsWith('.lora_A.weight'))
    .map((k) => moduleOf(k));
  const naming = detectNaming(modelType, adapterModules);
  for (const [key, host] of tensors) {
    if (!key.startsWith(PREFIX))
      throw new ModelInputError(`${dir}: adapter key ${key} lacks the ${PREFIX} prefix`);
    if (key.endsWith('.lora_B.weight')) continue;
    if (key.endsWith('.lora_A.weight')) {
      const adapterModule = moduleOf(key);
      const module = toCheckpointName(modelType, adapterModule);
      if (!linear.has(module))
        throw new ModelInputError(`${dir}: adapter targets ${adapterModule}, not a linear module here`);
      const b = tensors.get(`${PREFIX}${adapterModule}.lora_B.weight`);
      if (!b) throw new ModelInputError(`${dir}: ${adapterModule} has lora_A but no lora_B`);
      const rank = host.shape[0];
      const lora: LoraModule = {
        module,
        rank,
        scale: loraScale(config, adapterModule, rank),
        aT: transposed(host),
        bT: transposed(b),
        linearized: false,
      };
      if (init) {
        const a0 = init.get(key);
        const b0 = init.get(`${PREFIX}${adapterModule}.lora_B.weight`);
        if (!a0 || !b0)
          throw new ModelInputError(`${dir}: ${extras?.init} lacks the expansion point of ${adapterModule}`);
        lora.linearized = true;
        lora.a0T = transposed(a0);
        lora.b0T = transposed(b0);
        lora.b0IsZero = (b0.data as Float32Array).every((v) => v === 0);
      }
      modules.set(module, lora);
      continue;
    }
    if (/\.lora_[A-Za-z_]+(\.|$)/.test(key))
      throw new ModelInputError(`${dir}: adapter tensor ${key} is not supported`);
    // modules_to_save: whole weights under plain keys.
    const name = toCheckpointName(modelType, key.slice(PREFIX.length));
    const module = name.slice(0, name.lastIndexOf('.'));
    const isLinearWeight = name.endsWith('.weight') && linear.has(module);
    overrides.set(name, isLinearWeight ? transposed(host) : tf.tensor(host.data as Float32Array, host.shape));
  }
  return {
    config,
    naming,
    extras,
    modules,
    overrides,
    dispose() {
      for (const m of modules.values()) for (const t of [m.aT, m.bT, m.a0T, m.b0T]) t?.dispose();
      for (const t of overrides.values()) t.dispose();
    },
  };
}

function moduleOf(key: string): string {
  return key.slice(PREFIX.length).replace(/\.lora_[AB]\.weight$/, '');
}

function transposed(host: HostTensor): tf.Tensor2D {
  const [rows, ...rest] = host.shape;
  const cols = rest.reduce((a, b) => a * b, 1);
  return tf.tidy(() => tf.transpose(tf.tensor2d(host.data as Float32Array, [rows, cols])));
}

async function readExtras(dir: string): Promise<LorafuseExtras | null> {
  try {
    return parseBoundedJson(await readFile(path.join(dir, 'lorafuse.json'), 'utf8')) as LorafuseExtras;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw error;
  }
}

/** Everything needed to write an adapter folder; tensors are in HF layout already. */
export interface AdapterToWrite {
  config: PeftLoraConfig;
  modelType: string;
  naming: AdapterNaming;
  /** Checkpoint module name → lora_A [r, in] and lora_B [out, r]. */
  factors: Map<string, { a: HostTensor; b: HostTensor }>;
  /** Checkpoint tensor name → modules_to_save weight. */
  saved: Map<string, HostTensor>;
  extras?: LorafuseExtras;
  /** The expansion point (L-LoRA), same module keys as `factors`. */
  init?: Map<string, { a: HostTensor; b: HostTensor }>;
}

/** Writes adapter_config.json + adapter_model.safetensors exactly as PEFT does, and lorafuse's files beside them. */
export async function writeAdapter(dir: string, adapter: AdapterToWrite): Promise<string[]> {
  await mkdir(dir, { recursive: true });
  const name = (module: string) => toAdapterName(adapter.modelType, module, adapter.naming);
  const entries: Array<[string, HostTensor]> = [];
  for (const [tensorName, t] of adapter.saved) entries.push([`${PREFIX}${name(tensorName)}`, t]);
  for (const [module, { a, b }] of adapter.factors) {
    entries.push(
      [`${PREFIX}${name(module)}.lora_A.weight`, a],
      [`${PREFIX}${name(module)}.lora_B.weight`, b],
    );
  }
  entries.sort(([x], [y]) => (x < y ? -1 : x > y ? 1 : 0)); // PEFT/safetensors write keys sorted
  await writeSafetensorsFile(path.join(dir, 'adapter_model.safetensors'), entries, { format: 'pt' });
  await writeFile(path.join(dir, 'adapter_config.json'), `${JSON.stringify(adapter.config, null, 2)}`);
  const files = ['adapter_config.json', 'adapter_model.safetensors'];
  if (adapter.init) {
    const initEntries: Array<[string, HostTensor]> = [];
    for (const [module, { a, b }] of adapter.init) {
      initEntries.push(
        [`${PREFIX}${name(module)}.lora_A.weight`, a],
        [`${PREFIX}${name(module)}.lora_B.weight`, b],
      );
    }
    await writeSafetensorsFile(path.join(dir, 'lorafuse_init.safetensors'), initEntries, { format: 'pt' });
    files.push('lorafuse_init.safetensors');
  }
  if (adapter.extras) {
    const extras = { ...adapter.extras, init: adapter.init ? 'lorafuse_init.safetensors' : undefined };
    await writeFile(path.join(dir, 'lorafuse.json'), `${JSON.stringify(extras, null, 2)}\n`);
    files.push('lorafuse.json');
  }
  return files;
}
