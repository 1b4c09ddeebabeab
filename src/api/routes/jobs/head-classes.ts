// Checks, before queueing, that a task head answers the classes its dataset names: a head's class count
// (rows of its weight) must equal the number of the dataset's class_names, else accuracy would compare
// labels with a classifier of some other task. Reads tensor headers only, never a tensor.
import {
  ADAPTER_WEIGHTS,
  ArtifactInputs,
  type ArtifactRecord,
  type ArtifactStore,
} from '../../../store/index.ts';
import { ApiProblem } from '../../errors.ts';

/** The tensor a head replaces: every architecture lorafuse runs names its task head `classifier`. */
const CLASSIFIER_WEIGHT = 'classifier.weight';
const PEFT_CLASSIFIER_WEIGHT = `base_model.model.${CLASSIFIER_WEIGHT}`;

/**
 * How many classes a head spec answers (`adapter:<id>`, `head:<id>`, `model:<id>`, or `model`: the classifier
 * of `own`, the model whose classifier is used when no head replaces it); null when it cannot be told.
 */
export async function headClassCount(
  store: ArtifactStore,
  spec: string,
  own: ArtifactRecord | null,
): Promise<number | null> {
  const colon = spec.indexOf(':');
  const kind = colon < 0 ? spec : spec.slice(0, colon);
  const id = colon < 0 ? own?.id : spec.slice(colon + 1);
  if (!id) return null;
  if (kind === 'head') return (await store.get(id))?.head?.classes ?? null;
  const inputs = new ArtifactInputs(store);
  try {
    if (kind === 'adapter') {
      const record = await store.get(id);
      if (!record?.files.some((f) => f.name === ADAPTER_WEIGHTS)) return null;
      const { weights } = await inputs.openAdapter(id);
      return weights.has(PEFT_CLASSIFIER_WEIGHT) ? weights.info(PEFT_CLASSIFIER_WEIGHT).shape[0] : null;
    }
    if ((await store.get(id))?.kind !== 'model') return null;
    const { checkpoint, config } = await inputs.openModel(id);
    if (checkpoint.has(CLASSIFIER_WEIGHT)) return checkpoint.info(CLASSIFIER_WEIGHT).shape[0];
    return typeof config?.num_labels === 'number' ? config.num_labels : null;
  } finally {
    await inputs.closeAll();
  }
}

/** A 422 `head-class-mismatch` naming the task when `spec` answers another number of classes than `dataset`. */
export async function requireHeadFitsDataset(
  store: ArtifactStore,
  check: {
    spec: string;
    own: ArtifactRecord | null;
    dataset: ArtifactRecord;
    /** Who reads the dataset through the head, for the message (`task parity`, `datasets[1]`). */
    task: string;
    field: string;
  },
): Promise<void> {
  const classes = check.dataset.classes?.length;
  if (classes === undefined) return;
  const count = await headClassCount(store, check.spec, check.own);
  if (count === null || count === classes) return;
  throw new ApiProblem(
    'head-class-mismatch',
    `${check.task}: the head ${check.spec === 'model' ? `of ${check.own?.id}` : check.spec} answers ${count} classes, but dataset ${check.dataset.id} names ${classes} (class_names ${JSON.stringify(check.dataset.classes)})`,
    { task: check.task, field: check.field, headClasses: count, datasetClasses: classes },
  );
}
