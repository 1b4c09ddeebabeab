// Tiny model and adapter folders written at test time (a few hundred bytes each), plus helpers to
// look at what a store holds on disk.
import fs from 'node:fs/promises';
import path from 'node:path';
import { CheckpointWriter, writeSafetensors } from '../../src/tensors/index.ts';

export const HIDDEN = 4;
export const MODULE = 'model.layers.0.self_attn.q_proj';

function ramp(length: number, offset: number): Float32Array {
  return Float32Array.from({ length }, (_, i) => (i + offset) / 10);
}

/** A one-layer "model": q_proj [4,4], an up_proj [8,4] and a norm [4]. */
export async function writeModelFolder(dir: string, options: { offset?: number; config?: boolean } = {}) {
  const offset = options.offset ?? 0;
  await fs.mkdir(dir, { recursive: true });
  await writeSafetensors(path.join(dir, 'model.safetensors'), [
    { name: `${MODULE}.weight`, dtype: 'F32', shape: [HIDDEN, HIDDEN], data: ramp(16, offset) },
    { name: 'model.layers.0.mlp.up_proj.weight', dtype: 'F32', shape: [8, HIDDEN], data: ramp(32, offset) },
    { name: 'model.norm.weight', dtype: 'F32', shape: [HIDDEN], data: ramp(4, offset) },
  ]);
  if (options.config !== false) {
    await fs.writeFile(
      path.join(dir, 'config.json'),
      JSON.stringify({ model_type: 'llama', hidden_size: HIDDEN }),
    );
  }
  return dir;
}

/** The same tensors split over shards with an index. */
export async function writeShardedModelFolder(dir: string): Promise<string[]> {
  await fs.mkdir(dir, { recursive: true });
  const specs = [
    { name: `${MODULE}.weight`, dtype: 'F32' as const, shape: [HIDDEN, HIDDEN] },
    { name: 'model.layers.0.mlp.up_proj.weight', dtype: 'F32' as const, shape: [8, HIDDEN] },
    { name: 'model.norm.weight', dtype: 'F32' as const, shape: [HIDDEN] },
  ];
  const writer = await CheckpointWriter.create(dir, specs, { maxShardBytes: 80 });
  await writer.write(specs[0].name, ramp(16, 0));
  await writer.write(specs[1].name, ramp(32, 0));
  await writer.write(specs[2].name, ramp(4, 0));
  return writer.close();
}

/** A PEFT LoRA adapter of rank 2 on q_proj (or on `module` with `inFeatures`). */
export async function writeAdapterFolder(
  dir: string,
  options: { module?: string; inFeatures?: number; outFeatures?: number; rank?: number } = {},
) {
  const module = options.module ?? MODULE;
  const rank = options.rank ?? 2;
  const inFeatures = options.inFeatures ?? HIDDEN;
  const outFeatures = options.outFeatures ?? HIDDEN;
  await fs.mkdir(dir, { recursive: true });
  await writeSafetensors(path.join(dir, 'adapter_model.safetensors'), [
    {
      name: `base_model.model.${module}.lora_A.weight`,
      dtype: 'F32',
      shape: [rank, inFeatures],
      data: ramp(rank * inFeatures, 1),
    },
    {
      name: `base_model.model.${module}.lora_B.weight`,
      dtype: 'F32',
      shape: [outFeatures, rank],
      data: ramp(outFeatures * rank, 2),
    },
  ]);
  await fs.writeFile(
    path.join(dir, 'adapter_config.json'),
    JSON.stringify({ peft_type: 'LORA', r: rank, lora_alpha: 2 * rank, target_modules: ['q_proj'] }),
  );
  return dir;
}

/** Everything under a directory, recursively (relative paths). */
export async function listFiles(dir: string): Promise<string[]> {
  try {
    const entries = await fs.readdir(dir, { recursive: true, withFileTypes: true });
    return entries
      .filter((entry) => entry.isFile())
      .map((entry) => path.relative(dir, path.join(entry.parentPath, entry.name)))
      .sort();
  } catch {
    return [];
  }
}

/** What a store holds on disk: blob digests and leftover temporary entries. */
export async function diskState(dataDir: string): Promise<{ blobs: string[]; tmp: string[] }> {
  const blobs = (await listFiles(path.join(dataDir, 'blobs'))).map((file) =>
    file.split(path.sep).slice(-2).join(''),
  );
  const tmp = await fs.readdir(path.join(dataDir, 'tmp')).catch(() => []);
  return { blobs, tmp };
}
