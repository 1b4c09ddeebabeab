// Reads the head an evaluation names (`adapter:<id>`, `head:<id>`, `model:<id>`, or `model` for none) from the
// store: the merge job's per-task evaluations and the evaluate job's per-dataset heads share it.
import { readAdapterHead, readModelHead, readStoredHead, type TaskHead } from '../src/eval/heads.ts';
import {
  ADAPTER_WEIGHTS,
  type ArtifactRecord,
  type ArtifactStore,
  HEAD_FILE,
  requireArtifact,
} from '../src/store/index.ts';
import { InvalidJobInputError } from './job-failure.ts';

/** The head a task names (`adapter:<id>`, `head:<id>`, `model:<id>`), or null for `model` (no override). */
export async function resolveHead(
  store: ArtifactStore,
  head: string,
  linked: (record: ArtifactRecord) => Promise<string>,
): Promise<TaskHead | null> {
  if (head === 'model') return null;
  const [kind, id] = [head.slice(0, head.indexOf(':')), head.slice(head.indexOf(':') + 1)];
  if (kind === 'adapter') {
    const r = await requireArtifact(store, id, 'adapter');
    const found = await readAdapterHead(store.filePaths(r)[ADAPTER_WEIGHTS]);
    if (!found) throw new InvalidJobInputError(`adapter ${id} carries no classifier head (modules_to_save)`);
    return found;
  }
  if (kind === 'head') {
    const r = await requireArtifact(store, id, 'head');
    return readStoredHead(store.filePaths(r)[HEAD_FILE]);
  }
  if (kind === 'model') {
    const r = await requireArtifact(store, id, 'model');
    const found = await readModelHead(await linked(r));
    if (!found) throw new InvalidJobInputError(`model ${id} has no classifier to read as a head`);
    return found;
  }
  throw new InvalidJobInputError(`unknown head ${head}`);
}
