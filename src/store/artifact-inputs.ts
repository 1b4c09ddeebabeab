// Opens merge inputs named by artifact id straight from the blob store (headers only until a tensor
// is read), for the API's pre-queue validation and the merge worker alike. The classes satisfy the
// merge planner's InputResolver structurally, so the store needs nothing of src/merge.
// Every checkpoint opened is tracked so that a failed plan still closes them all.
import { Checkpoint, type FileRef } from '../tensors/index.ts';
import {
  ADAPTER_CONFIG,
  ADAPTER_WEIGHTS,
  LORAFUSE_EXTRAS,
  LORAFUSE_INIT,
  MODEL_CONFIG,
} from './artifact-layout.ts';
import type { ArtifactStore } from './artifact-store.ts';
import type { HeaderCache } from './header-cache.ts';
import { readJsonObject } from './read-json.ts';
import type { ArtifactRecord, StoredArtifactKind } from './types.ts';

/** A stored model opened for reading: its checkpoint and parsed config.json when it has one. */
export interface StoredModelSource {
  checkpoint: Checkpoint;
  config?: Record<string, unknown>;
}

/** A stored PEFT adapter opened for reading, with lorafuse's side files when present. */
export interface StoredAdapterSource {
  config: Record<string, unknown>;
  weights: Checkpoint;
  init?: Checkpoint;
  extras?: Record<string, unknown>;
}

/** The recipe names an id that is not a stored artifact of the kind its place needs. */
export class MissingArtifactError extends Error {
  constructor(
    readonly artifactId: string,
    readonly expectedKind: StoredArtifactKind,
  ) {
    super(`${artifactId} is not a stored ${expectedKind}`);
    this.name = 'MissingArtifactError';
  }
}

/** The record of `id` when it is a stored artifact of `kind`; MissingArtifactError otherwise. */
export async function requireArtifact(
  store: ArtifactStore,
  id: string,
  kind: StoredArtifactKind,
): Promise<ArtifactRecord> {
  const record = await store.get(id);
  if (!record || record.kind !== kind) throw new MissingArtifactError(id, kind);
  return record;
}

export interface ArtifactInputsOptions {
  /**
   * Serve safetensors headers from this cache (the API's checks before queueing, which read only headers);
   * tensor data is still read from the blob, opened on first need.
   */
  headers?: HeaderCache;
  /** Records the caller has read already (the API reads every input's record first): not read again. */
  records?: ReadonlyMap<string, ArtifactRecord>;
}

export class ArtifactInputs {
  private readonly opened: Checkpoint[] = [];
  /** The first id that was not found: the planner wraps resolver errors, so it is kept here. */
  missing: MissingArtifactError | undefined;

  constructor(
    private readonly store: ArtifactStore,
    private readonly options: ArtifactInputsOptions = {},
  ) {}

  /** The record's files by name, safetensors through the header cache when there is one. */
  private refs(record: ArtifactRecord): Record<string, FileRef> {
    const refs = this.store.fileRefs(record);
    const headers = this.options.headers;
    if (!headers) return refs;
    for (const file of record.files) {
      if (file.name.endsWith('.safetensors')) {
        refs[file.name] = headers.source(file.sha256, file.size, refs[file.name]);
      }
    }
    return refs;
  }

  private async record(id: string, kind: StoredArtifactKind): Promise<ArtifactRecord> {
    const known = this.options.records?.get(id);
    if (known?.kind === kind) return known;
    try {
      return await requireArtifact(this.store, id, kind);
    } catch (error) {
      if (error instanceof MissingArtifactError) this.missing ??= error;
      throw error;
    }
  }

  private async open(files: Record<string, FileRef>, stem?: string): Promise<Checkpoint> {
    const checkpoint = await Checkpoint.openFiles(files, stem);
    this.opened.push(checkpoint);
    return checkpoint;
  }

  async openModel(ref: string): Promise<StoredModelSource> {
    const paths = this.refs(await this.record(ref, 'model'));
    const config = paths[MODEL_CONFIG] ? await readJsonObject(paths[MODEL_CONFIG], MODEL_CONFIG) : undefined;
    delete paths[MODEL_CONFIG];
    return { checkpoint: await this.open(paths), config };
  }

  async openAdapter(ref: string): Promise<StoredAdapterSource> {
    const paths = this.refs(await this.record(ref, 'adapter'));
    const source: StoredAdapterSource = {
      config: await readJsonObject(paths[ADAPTER_CONFIG], ADAPTER_CONFIG),
      weights: await this.open({ [ADAPTER_WEIGHTS]: paths[ADAPTER_WEIGHTS] }, 'adapter_model'),
    };
    if (paths[LORAFUSE_INIT]) {
      source.init = await this.open({ [LORAFUSE_INIT]: paths[LORAFUSE_INIT] }, 'lorafuse_init');
    }
    if (paths[LORAFUSE_EXTRAS]) source.extras = await readJsonObject(paths[LORAFUSE_EXTRAS], LORAFUSE_EXTRAS);
    return source;
  }

  /** Closes everything opened; harmless after closePlan closed the same checkpoints. */
  async closeAll(): Promise<void> {
    await Promise.all(this.opened.splice(0).map((checkpoint) => checkpoint.close().catch(() => undefined)));
  }
}
