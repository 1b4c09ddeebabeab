// A model checkpoint as Hugging Face lays it out: `<stem>.safetensors`, or shards listed by
// `<stem>.safetensors.index.json`. The index is checked against the shards before anything is read.

import { readdir } from 'node:fs/promises';
import path from 'node:path';
import type { Tensor, TensorInfo } from './dtypes.ts';
import { SafetensorsError } from './errors.ts';
import { SafetensorsFile } from './file-reader.ts';
import { type FileRef, readWhole, refName } from './range-source.ts';
import { isJsonObject, type JsonValue, parseStrictJson } from './strict-json.ts';

export class Checkpoint {
  metadata: Record<string, string>;
  /** File names (relative to the checkpoint) that hold tensors, in index order. */
  readonly files: string[];
  readonly #owner: Map<string, SafetensorsFile>;
  readonly #opened: SafetensorsFile[];

  private constructor(files: string[], opened: SafetensorsFile[], owner: Map<string, SafetensorsFile>) {
    this.files = files;
    this.#opened = opened;
    this.#owner = owner;
    this.metadata = opened[0]?.metadata ?? {};
  }

  /** Opens a checkpoint folder: `<stem>.safetensors` if present (as transformers prefers), else the index and its shards. */
  static async openFolder(dir: string, stem = 'model'): Promise<Checkpoint> {
    const entries = await readdir(dir);
    const files: Record<string, string> = {};
    for (const name of entries) files[name] = path.join(dir, name);
    return Checkpoint.openFiles(files, stem);
  }

  /**
   * Same as openFolder over an explicit file-name -> path map (for content-addressed blob stores);
   * a value may also be a RangeSource (an object store's ranged reads).
   */
  static async openFiles(files: Record<string, FileRef>, stem = 'model'): Promise<Checkpoint> {
    const single = `${stem}.safetensors`;
    const indexName = `${stem}.safetensors.index.json`;
    if (Object.hasOwn(files, single)) {
      const file = await SafetensorsFile.open(files[single]);
      return new Checkpoint([single], [file], new Map(file.names().map((n) => [n, file])));
    }
    if (!Object.hasOwn(files, indexName)) {
      throw new SafetensorsError(
        'checkpoint_not_found',
        indexName,
        `neither ${single} nor ${indexName} is present`,
      );
    }
    const indexPath = refName(files[indexName]);
    const weightMap = parseIndex(new TextDecoder().decode(await readWhole(files[indexName])), indexPath);
    const shardNames = [...new Set(weightMap.values())];
    const opened: SafetensorsFile[] = [];
    try {
      const byName = new Map<string, SafetensorsFile>();
      for (const shard of shardNames) {
        if (!Object.hasOwn(files, shard)) {
          throw new SafetensorsError(
            'index_missing_shard',
            indexPath,
            `weight_map names the missing file '${shard}'`,
          );
        }
        const file = await SafetensorsFile.open(files[shard]);
        opened.push(file);
        byName.set(shard, file);
      }
      const owner = new Map<string, SafetensorsFile>();
      for (const [shard, file] of byName) {
        for (const tensor of file.names()) {
          const other = owner.get(tensor);
          if (other) {
            throw new SafetensorsError(
              'checkpoint_duplicate_tensor',
              file.path,
              `also stored in ${other.path}`,
              tensor,
            );
          }
          owner.set(tensor, file);
          if (weightMap.get(tensor) !== shard) {
            throw new SafetensorsError(
              'index_mismatch',
              file.path,
              weightMap.has(tensor)
                ? `the index puts it in '${weightMap.get(tensor)}'`
                : 'the index does not list it',
              tensor,
            );
          }
        }
      }
      for (const [tensor, shard] of weightMap) {
        if (!owner.has(tensor)) {
          throw new SafetensorsError(
            'index_mismatch',
            byName.get(shard)!.path,
            `the index puts it in '${shard}' but it is not there`,
            tensor,
          );
        }
      }
      return new Checkpoint(shardNames, opened, owner);
    } catch (error) {
      await Promise.all(opened.map((f) => f.close()));
      throw error;
    }
  }

  /** Tensor names: header order within each file, files in index order. */
  names(): string[] {
    return [...this.#owner.keys()];
  }

  has(name: string): boolean {
    return this.#owner.has(name);
  }

  info(name: string): TensorInfo {
    return this.#file(name).info(name);
  }

  async read(name: string): Promise<Tensor> {
    return this.#file(name).read(name);
  }

  async readFloat32(name: string): Promise<Float32Array> {
    return this.#file(name).readFloat32(name);
  }

  /** readFloat32 into a caller-owned array of exactly numel elements (see SafetensorsFile.readFloat32Into). */
  async readFloat32Into(name: string, out: Float32Array): Promise<Float32Array> {
    return this.#file(name).readFloat32Into(name, out);
  }

  /** A tensor's raw bytes (or a range of them) into a caller-owned buffer (see SafetensorsFile.readBytesInto). */
  async readBytesInto(name: string, target: Uint8Array, byteOffset?: number): Promise<Uint8Array> {
    return this.#file(name).readBytesInto(name, target, byteOffset);
  }

  async close(): Promise<void> {
    await Promise.all(this.#opened.map((f) => f.close()));
  }

  #file(name: string): SafetensorsFile {
    const file = this.#owner.get(name);
    if (!file)
      throw new SafetensorsError(
        'tensor_not_found',
        this.files.join(', '),
        'no such tensor in the checkpoint',
        name,
      );
    return file;
  }
}

/** `{metadata?, weight_map: {tensor: file}}` with plain file names (no directories, no `..`). */
function parseIndex(text: string, indexPath: string): Map<string, string> {
  let index: JsonValue;
  try {
    index = parseStrictJson(text);
  } catch (error) {
    throw new SafetensorsError('index_invalid', indexPath, `not valid JSON: ${(error as Error).message}`);
  }
  if (!isJsonObject(index) || !isJsonObject(index.weight_map)) {
    throw new SafetensorsError('index_invalid', indexPath, 'expected an object with a weight_map object');
  }
  const weightMap = new Map<string, string>();
  for (const [tensor, shard] of Object.entries(index.weight_map)) {
    if (
      typeof shard !== 'string' ||
      shard === '' ||
      shard !== path.basename(shard) ||
      shard.includes('\\') ||
      shard === '..' ||
      shard === '.'
    ) {
      throw new SafetensorsError(
        'index_invalid',
        indexPath,
        `weight_map entry ${JSON.stringify(shard)} is not a file name`,
        tensor,
      );
    }
    weightMap.set(tensor, shard);
  }
  return weightMap;
}
