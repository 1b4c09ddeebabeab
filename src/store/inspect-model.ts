// Validates a model's files (every safetensors header, the shard index, config.json) and
// summarises them for the record. Reads headers only, never tensor data.
import path from 'node:path';
import { Checkpoint, type FileRef } from '../tensors/index.ts';
import {
  LORAFUSE_EXTRAS,
  MODEL_CONFIG,
  MODEL_INDEX,
  MODEL_SHARD_PATTERN,
  MODEL_WEIGHTS,
} from './artifact-layout.ts';
import { ArtifactValidationError } from './errors.ts';
import { validateTaskHeads } from './inspect-head.ts';
import { readJsonObject } from './read-json.ts';
import { asValidationError, summariseTensors } from './tensor-summary.ts';
import type { ArtifactSummary } from './types.ts';

/** Shard names the index refers to; the index must be `{ weight_map: { tensor: shard } }`. */
async function indexedShards(indexPath: FileRef): Promise<Set<string>> {
  const index = await readJsonObject(indexPath, MODEL_INDEX);
  const weightMap = index.weight_map;
  if (weightMap === null || typeof weightMap !== 'object' || Array.isArray(weightMap)) {
    throw new ArtifactValidationError('invalid-index', `${MODEL_INDEX} has no weight_map object`, {
      file: MODEL_INDEX,
    });
  }
  const shards = new Set<string>();
  for (const [tensor, shard] of Object.entries(weightMap)) {
    if (typeof shard !== 'string' || path.basename(shard) !== shard) {
      throw new ArtifactValidationError('invalid-index', `${MODEL_INDEX} maps ${tensor} to an invalid file`, {
        file: MODEL_INDEX,
        tensor,
      });
    }
    shards.add(shard);
  }
  return shards;
}

/**
 * `files`: file name -> path of every file of the artifact; weights and the index may also be stored blobs read
 * by range (a sharded merge's shards, validated where they are).
 */
export async function inspectModel(files: Record<string, FileRef>): Promise<ArtifactSummary> {
  const names = Object.keys(files);
  const paths: Record<string, string> = {};
  for (const [name, file] of Object.entries(files)) if (typeof file === 'string') paths[name] = file;
  const shards = names.filter((name) => MODEL_SHARD_PATTERN.test(name));
  if (files[MODEL_CONFIG]) await readJsonObject(files[MODEL_CONFIG], MODEL_CONFIG);
  if (files[LORAFUSE_EXTRAS]) await readJsonObject(files[LORAFUSE_EXTRAS], LORAFUSE_EXTRAS);
  await validateTaskHeads(paths);
  if (files[MODEL_WEIGHTS] && (files[MODEL_INDEX] || shards.length > 0)) {
    throw new ArtifactValidationError(
      'ambiguous-checkpoint',
      `a model holds either ${MODEL_WEIGHTS} or shards with ${MODEL_INDEX}, not both`,
    );
  }
  const weights: Record<string, FileRef> = {};
  if (files[MODEL_WEIGHTS]) {
    weights[MODEL_WEIGHTS] = files[MODEL_WEIGHTS];
  } else if (files[MODEL_INDEX]) {
    const referenced = await indexedShards(files[MODEL_INDEX]);
    for (const shard of referenced) {
      if (!files[shard]) {
        throw new ArtifactValidationError(
          'missing-file',
          `${MODEL_INDEX} refers to ${shard}, which is missing`,
          {
            file: shard,
          },
        );
      }
    }
    for (const shard of shards) {
      if (!referenced.has(shard)) {
        throw new ArtifactValidationError('unexpected-file', `${shard} is not referenced by ${MODEL_INDEX}`, {
          file: shard,
        });
      }
    }
    weights[MODEL_INDEX] = files[MODEL_INDEX];
    for (const shard of shards) weights[shard] = files[shard];
  } else {
    throw new ArtifactValidationError(
      'missing-file',
      `a model needs ${MODEL_WEIGHTS}, or shards with ${MODEL_INDEX}`,
      { file: MODEL_WEIGHTS },
    );
  }
  let checkpoint: Checkpoint;
  try {
    checkpoint = await Checkpoint.openFiles(weights);
  } catch (error) {
    throw asValidationError(error, paths);
  }
  try {
    return summariseTensors(checkpoint);
  } finally {
    await checkpoint.close();
  }
}
