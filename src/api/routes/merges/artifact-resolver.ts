// Opens recipe inputs named by artifact id for the merge planner: blobs are opened in place (headers
// only until a tensor is read). Every checkpoint opened is tracked so that a failed plan closes them.
import type { AdapterSource, InputResolver, ModelSource } from '../../../merge/index.ts';
import {
  ADAPTER_CONFIG,
  ADAPTER_WEIGHTS,
  type ArtifactRecord,
  type ArtifactStore,
  LORAFUSE_EXTRAS,
  LORAFUSE_INIT,
  MODEL_CONFIG,
  type StoredArtifactKind,
} from '../../../store/index.ts';
import { readJsonObject } from '../../../store/read-json.ts';
import { Checkpoint } from '../../../tensors/index.ts';

export class ArtifactResolver implements InputResolver {
  private readonly opened: Checkpoint[] = [];

  constructor(private readonly store: ArtifactStore) {}

  private async record(id: string, kind: StoredArtifactKind): Promise<ArtifactRecord> {
    const record = await this.store.get(id);
    if (!record || record.kind !== kind) throw new Error(`${id} is not a stored ${kind}`);
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
    if (paths[LORAFUSE_INIT])
      source.init = await this.open({ [LORAFUSE_INIT]: paths[LORAFUSE_INIT] }, 'lorafuse_init');
    if (paths[LORAFUSE_EXTRAS]) source.extras = await readJsonObject(paths[LORAFUSE_EXTRAS], LORAFUSE_EXTRAS);
    return source;
  }

  /** Closes everything this resolver opened (after a failed plan; closePlan does it after a good one). */
  async closeAll(): Promise<void> {
    await Promise.all(this.opened.splice(0).map((checkpoint) => checkpoint.close().catch(() => undefined)));
  }
}
