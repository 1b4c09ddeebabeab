// Opens a merge job's inputs, named by artifact id, straight from the blob store for the planner.
// Every checkpoint opened is tracked so that a failed plan still closes them all.
import type { AdapterSource, InputResolver, ModelSource } from '../../src/merge/index.ts';
import {
  ADAPTER_CONFIG,
  ADAPTER_WEIGHTS,
  type ArtifactRecord,
  type ArtifactStore,
  LORAFUSE_EXTRAS,
  LORAFUSE_INIT,
  MODEL_CONFIG,
  type StoredArtifactKind,
} from '../../src/store/index.ts';
import { readJsonObject } from '../../src/store/read-json.ts';
import { Checkpoint } from '../../src/tensors/index.ts';

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

export class ArtifactInputs implements InputResolver {
  private readonly opened: Checkpoint[] = [];
  /** The first id that was not found: the planner wraps resolver errors, so it is kept here. */
  missing: MissingArtifactError | undefined;

  constructor(private readonly store: ArtifactStore) {}

  private async record(id: string, kind: StoredArtifactKind): Promise<ArtifactRecord> {
    const record = await this.store.get(id);
    if (!record || record.kind !== kind) {
      const error = new MissingArtifactError(id, kind);
      this.missing ??= error;
      throw error;
    }
    return record;
  }

  private async open(files: Record<string, string>, stem?: string): Promise<Checkpoint> {
    const checkpoint = await Checkpoint.openFiles(files, stem);
    this.opened.push(checkpoint);
    return checkpoint;
  }

  async openModel(ref: string): Promise<ModelSource> {
    const paths = this.store.filePaths(await this.record(ref, 'model'));
    const config = paths[MODEL_CONFIG] ? await readJsonObject(paths[MODEL_CONFIG], MODEL_CONFIG) : undefined;
    delete paths[MODEL_CONFIG];
    return { checkpoint: await this.open(paths), config };
  }

  async openAdapter(ref: string): Promise<AdapterSource> {
    const paths = this.store.filePaths(await this.record(ref, 'adapter'));
    const source: AdapterSource = {
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
