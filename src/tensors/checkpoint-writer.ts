// Writes a checkpoint folder with Hugging Face's size-based sharding: shards are assigned up front
// from the specs (greedy, in spec order), each shard's header is written before its data, and a single
// shard is plain `<stem>.safetensors` with no index.

import { mkdir, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { DTYPE_BYTES, numelOf, type TensorSpec, type TypedArray } from './dtypes.ts';
import { SafetensorsError } from './errors.ts';
import { SafetensorsWriter } from './file-writer.ts';
import { layoutTensors } from './header.ts';

/** transformers' save_pretrained default (max_shard_size="5GB"). */
export const DEFAULT_MAX_SHARD_BYTES = 5_000_000_000;

export interface Shard {
  file: string;
  specs: TensorSpec[];
}

/**
 * The text of `<stem>.safetensors.index.json` for these shards: total_size and the weight map sorted by
 * tensor name, as transformers writes it. One function, so a checkpoint assembled from shards written
 * apart (a merge split into shard jobs) gets the very bytes a single writer gives.
 */
export function shardIndexText(shards: readonly Shard[]): string {
  let totalSize = 0;
  const entries: Array<readonly [string, string]> = [];
  for (const shard of shards) {
    for (const spec of shard.specs) {
      totalSize += numelOf(spec.shape) * DTYPE_BYTES[spec.dtype];
      entries.push([spec.name, shard.file]);
    }
  }
  entries.sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  const weightMap: Record<string, string> = {};
  // defineProperty: a tensor named `__proto__` is an ordinary key here.
  for (const [name, file] of entries)
    Object.defineProperty(weightMap, name, { value: file, enumerable: true });
  return `${JSON.stringify({ metadata: { total_size: totalSize }, weight_map: weightMap }, null, 2)}\n`;
}

/** Greedy in spec order: a tensor opens a new shard when it would push a non-empty shard past the cap. */
export function assignShards(specs: readonly TensorSpec[], maxShardBytes: number, stem: string): Shard[] {
  const groups: TensorSpec[][] = [];
  let current: TensorSpec[] = [];
  let currentBytes = 0;
  for (const spec of specs) {
    const bytes = numelOf(spec.shape) * DTYPE_BYTES[spec.dtype];
    if (current.length > 0 && currentBytes + bytes > maxShardBytes) {
      groups.push(current);
      current = [];
      currentBytes = 0;
    }
    current.push(spec);
    currentBytes += bytes;
  }
  if (current.length > 0 || groups.length === 0) groups.push(current);
  if (groups.length === 1) return [{ file: `${stem}.safetensors`, specs: groups[0] }];
  const total = String(groups.length).padStart(5, '0');
  return groups.map((group, i) => ({
    file: `${stem}-${String(i + 1).padStart(5, '0')}-of-${total}.safetensors`,
    specs: group,
  }));
}

export class CheckpointWriter {
  readonly dir: string;
  readonly #shards: Shard[];
  readonly #stem: string;
  readonly #metadata: Record<string, string> | undefined;
  #shardIndex = -1;
  #writer: SafetensorsWriter | null = null;
  #tensorInShard = 0;
  /** A tensor is partly written (writePart): the shard must not change until it is done. */
  #partOpen = false;
  readonly #written: string[] = [];
  #done = false;

  private constructor(
    dir: string,
    shards: Shard[],
    stem: string,
    metadata: Record<string, string> | undefined,
  ) {
    this.dir = dir;
    this.#shards = shards;
    this.#stem = stem;
    this.#metadata = metadata;
  }

  static async create(
    dir: string,
    specs: TensorSpec[],
    options: { maxShardBytes?: number; stem?: string; metadata?: Record<string, string> } = {},
  ): Promise<CheckpointWriter> {
    const stem = options.stem ?? 'model';
    const maxShardBytes = options.maxShardBytes ?? DEFAULT_MAX_SHARD_BYTES;
    if (!(maxShardBytes > 0))
      throw new SafetensorsError('invalid_spec', dir, `maxShardBytes ${maxShardBytes} must be positive`);
    // validates names, dtypes and shapes for the whole checkpoint before any file exists
    layoutTensors(specs, dir);
    await mkdir(dir, { recursive: true });
    const writer = new CheckpointWriter(
      dir,
      assignShards(specs, maxShardBytes, stem),
      stem,
      options.metadata,
    );
    await writer.#openNextShard();
    return writer;
  }

  /** File names this checkpoint will consist of (shards, then the index when there is one). */
  get plannedFiles(): string[] {
    const files = this.#shards.map((s) => s.file);
    return files.length > 1 ? [...files, this.#indexName()] : files;
  }

  async write(name: string, data: TypedArray): Promise<void> {
    await this.#enterShardOf(name);
    await this.#writer!.write(name, data);
    this.#tensorInShard++;
  }

  /** Writes the next piece of a tensor (see SafetensorsWriter.writePart); answers whether it is done. */
  async writePart(name: string, data: TypedArray): Promise<boolean> {
    if (!this.#partOpen) await this.#enterShardOf(name);
    const done = await this.#writer!.writePart(name, data);
    this.#partOpen = !done;
    if (done) this.#tensorInShard++;
    return done;
  }

  /** Moves to the next shard when the current one holds all its tensors. */
  async #enterShardOf(name: string): Promise<void> {
    if (this.#done || !this.#writer)
      throw new SafetensorsError('writer_closed', this.dir, 'checkpoint writer is closed', name);
    while (this.#tensorInShard >= this.#shards[this.#shardIndex].specs.length) {
      if (this.#shardIndex + 1 >= this.#shards.length) {
        throw new SafetensorsError('writer_order', this.dir, 'every tensor is already written', name);
      }
      await this.#writer.close();
      await this.#openNextShard();
    }
  }

  /** Closes the last shard (checking every tensor was written) and writes the index; returns the file names. */
  async close(): Promise<string[]> {
    if (this.#done || !this.#writer)
      throw new SafetensorsError('writer_closed', this.dir, 'checkpoint writer is closed');
    try {
      const lastShard = this.#shardIndex === this.#shards.length - 1;
      if (!lastShard || this.#tensorInShard < this.#shards[this.#shardIndex].specs.length) {
        const shard = this.#shards[this.#shardIndex];
        const missing =
          shard.specs[this.#tensorInShard]?.name ?? this.#shards[this.#shardIndex + 1].specs[0].name;
        throw new SafetensorsError('writer_incomplete', this.dir, 'not every tensor was written', missing);
      }
      await this.#writer.close();
      this.#writer = null;
      if (this.#shards.length > 1) await this.#writeIndex();
      this.#done = true;
      return this.plannedFiles;
    } catch (error) {
      await this.abort();
      throw error;
    }
  }

  /** Removes every file it wrote (finished shards, the open one, the index). */
  async abort(): Promise<void> {
    this.#done = true;
    const writer = this.#writer;
    this.#writer = null;
    await writer?.abort();
    await Promise.all(this.#written.map((file) => rm(path.join(this.dir, file), { force: true })));
  }

  async #openNextShard(): Promise<void> {
    this.#shardIndex++;
    this.#tensorInShard = 0;
    const shard = this.#shards[this.#shardIndex];
    this.#written.push(shard.file);
    this.#writer = null;
    this.#writer = await SafetensorsWriter.create(
      path.join(this.dir, shard.file),
      shard.specs,
      this.#metadata,
    );
  }

  #indexName(): string {
    return `${this.#stem}.safetensors.index.json`;
  }

  async #writeIndex(): Promise<void> {
    const indexName = this.#indexName();
    this.#written.push(indexName);
    await writeFile(path.join(this.dir, indexName), shardIndexText(this.#shards), { flush: true });
  }
}
