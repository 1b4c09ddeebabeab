// A local model folder, adapter folder or safetensors file as the files an upload sends: their names
// inside the artifact, sizes and sha256 (streamed), and the artifact digest the service indexes.
import { createHash } from 'node:crypto';
import { createReadStream, existsSync, openAsBlob, readdirSync, statSync } from 'node:fs';
import path from 'node:path';
import type { Artifact, ArtifactKind, LorafuseClient } from '../../client/index.ts';
import {
  artifactDigest,
  DATASET_FILE,
  isAllowedFileName,
  MODEL_CONFIG,
  MODEL_WEIGHTS,
} from '../../store/index.ts';

export interface LocalFile {
  /** The name inside the artifact. */
  name: string;
  /** Where it is on disk. */
  source: string;
  size: number;
  sha256: string;
}

export interface LocalArtifact {
  kind: ArtifactKind;
  path: string;
  files: LocalFile[];
  digest: string;
}

/** A plain message for the user (exit 1), not a stack trace. */
export class ClientInputError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ClientInputError';
  }
}

async function sha256Of(file: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(file)) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

/**
 * What an upload of `target` sends. A folder contributes the files an artifact of `kind` may hold
 * (others, such as tokenizer files, are left out and named); a single .safetensors file is a model's
 * model.safetensors (with config.json beside it when present) or a dataset's dataset.safetensors.
 */
export async function readLocalArtifact(kind: ArtifactKind, target: string): Promise<LocalArtifact> {
  const shown = path.resolve(target);
  if (!existsSync(target)) throw new ClientInputError(`${shown} does not exist`);
  const sources = new Map<string, string>();
  if (statSync(target).isDirectory()) {
    if (kind === 'dataset')
      throw new ClientInputError(`${shown} is a folder; a dataset is one .safetensors file`);
    for (const entry of readdirSync(target, { withFileTypes: true })) {
      if (entry.isFile() && isAllowedFileName(kind, entry.name))
        sources.set(entry.name, path.join(target, entry.name));
    }
    if (kind === 'adapter' && !sources.has('adapter_config.json')) {
      throw new ClientInputError(`${shown} has no adapter_config.json: not a PEFT adapter folder`);
    }
    if (kind === 'model' && ![...sources.keys()].some((name) => name.endsWith('.safetensors'))) {
      throw new ClientInputError(`${shown} has no model.safetensors (nor shards): not a model folder`);
    }
  } else {
    if (!target.endsWith('.safetensors'))
      throw new ClientInputError(`${shown} is not a .safetensors file or a folder`);
    if (kind === 'adapter') throw new ClientInputError(`${shown} is a file; an adapter is a PEFT folder`);
    if (kind === 'dataset') sources.set(DATASET_FILE, target);
    else {
      sources.set(MODEL_WEIGHTS, target);
      const config = path.join(path.dirname(target), MODEL_CONFIG);
      if (existsSync(config)) sources.set(MODEL_CONFIG, config);
    }
  }
  const files: LocalFile[] = [];
  for (const [name, source] of [...sources.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) {
    files.push({ name, source, size: statSync(source).size, sha256: await sha256Of(source) });
  }
  return { kind, path: shown, files, digest: artifactDigest(files) };
}

export interface EnsureOutcome {
  artifact: Artifact;
  /** False when the service already held this content and nothing was sent. */
  uploaded: boolean;
}

/** Uploads `local` unless the service already holds an artifact with its digest. */
export async function ensureUploaded(client: LorafuseClient, local: LocalArtifact): Promise<EnsureOutcome> {
  const existing = await client.findArtifactByDigest(local.kind, local.digest);
  if (existing) return { artifact: existing, uploaded: false };
  // openAsBlob reads from disk as the request streams: a large checkpoint is never held in memory.
  const files = await Promise.all(
    local.files.map(async (file) => ({ name: file.name, data: await openAsBlob(file.source) })),
  );
  return { artifact: await client.uploadArtifact(local.kind, files), uploaded: true };
}
