// Checks the artifact ids a fine-tune or evaluation request names before it is queued: each must
// be stored with the kind its place needs, and a model must be runnable (have its config.json).
import { type ArtifactRecord, MODEL_CONFIG, type StoredArtifactKind } from '../../../store/index.ts';
import type { ArtifactStore } from '../../../store/index.ts';
import { ApiProblem } from '../../errors.ts';

/** Records of `ids` in order; one 422 listing every id that is not a stored artifact of `kind`. */
export async function requireArtifacts(
  store: ArtifactStore,
  wanted: Array<{ field: string; id: string; kind: StoredArtifactKind }>,
): Promise<ArtifactRecord[]> {
  const records: ArtifactRecord[] = [];
  const unknown: Array<{ field: string; id: string; kind: StoredArtifactKind }> = [];
  for (const entry of wanted) {
    const record = await store.get(entry.id);
    if (record && record.kind === entry.kind) records.push(record);
    else unknown.push(entry);
  }
  if (unknown.length > 0) {
    throw new ApiProblem(
      'unknown-artifact',
      unknown.map((entry) => `${entry.field}: ${entry.id} is not a stored ${entry.kind}`).join('; '),
      { artifacts: unknown.map((entry) => entry.id), fields: unknown.map((entry) => entry.field) },
    );
  }
  return records;
}

/** The model runtime needs config.json to know the architecture. */
export function requireRunnable(model: ArtifactRecord, field: string): void {
  if (!model.files.some((file) => file.name === MODEL_CONFIG)) {
    throw new ApiProblem(
      'model-not-runnable',
      `${model.id} has no ${MODEL_CONFIG}: a bare checkpoint can be merged but not run`,
      { id: model.id, field },
    );
  }
}
