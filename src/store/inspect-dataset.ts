// Validates a dataset file (DESIGN.md "Artifacts"): model inputs under their Hugging Face names with
// known dtypes and ranks, labels I64 [N] inside the class list, one N for every tensor, and the
// split, task and class names in the safetensors metadata. Reads the header and the labels only.
import { parseBoundedJson, SafetensorsFile, type TensorInfo } from '../tensors/index.ts';
import { DATASET_FILE } from './artifact-layout.ts';
import { ArtifactValidationError } from './errors.ts';
import { asValidationError, summariseTensors } from './tensor-summary.ts';
import { type ArtifactSummary, DATASET_SPLITS, type DatasetSplit } from './types.ts';

/** Each input name the model runtime reads, with the dtype and rank it must have. */
const INPUT_SPECS: Record<string, { dtype: string; rank: number }> = {
  pixel_values: { dtype: 'F32', rank: 4 },
  input_ids: { dtype: 'I64', rank: 2 },
  attention_mask: { dtype: 'I64', rank: 2 },
  token_type_ids: { dtype: 'I64', rank: 2 },
};
const LABELS = 'labels';
/** Token-level tensors that only make sense beside input_ids, with its shape. */
const TOKEN_COMPANIONS = ['attention_mask', 'token_type_ids'];
const MAX_TASK_LENGTH = 200;

function invalid(message: string, details: { tensor?: string; field?: string }): ArtifactValidationError {
  return new ArtifactValidationError('invalid-dataset', message, { file: DATASET_FILE, ...details });
}

function checkTensor(info: TensorInfo): void {
  const spec = info.name === LABELS ? { dtype: 'I64', rank: 1 } : INPUT_SPECS[info.name];
  if (!spec) {
    throw invalid(
      `${info.name} is not a dataset tensor (expected ${[...Object.keys(INPUT_SPECS), LABELS].join(', ')})`,
      { tensor: info.name },
    );
  }
  if (info.dtype !== spec.dtype || info.shape.length !== spec.rank) {
    throw invalid(
      `${info.name} must be ${spec.dtype} of rank ${spec.rank}, got ${info.dtype} [${info.shape.join(', ')}]`,
      { tensor: info.name },
    );
  }
}

function metadataField(metadata: Record<string, string>, field: string): string {
  const value = metadata[field];
  if (value === undefined || value.trim() === '') {
    throw invalid(`the metadata needs a non-empty "${field}"`, { field });
  }
  return value;
}

function classNames(metadata: Record<string, string>): string[] {
  const raw = metadataField(metadata, 'class_names');
  let parsed: unknown;
  try {
    parsed = parseBoundedJson(raw);
  } catch {
    throw invalid('class_names must be a JSON array of strings', { field: 'class_names' });
  }
  if (
    !Array.isArray(parsed) ||
    parsed.length === 0 ||
    !parsed.every((name) => typeof name === 'string' && name.length > 0)
  ) {
    throw invalid('class_names must be a non-empty JSON array of non-empty strings', {
      field: 'class_names',
    });
  }
  if (new Set(parsed).size !== parsed.length) {
    throw invalid('class_names holds a name twice', { field: 'class_names' });
  }
  return parsed as string[];
}

/** `files`: file name -> path; the dataset is the one dataset.safetensors. */
export async function inspectDataset(files: Record<string, string>): Promise<ArtifactSummary> {
  if (!files[DATASET_FILE]) {
    throw new ArtifactValidationError('missing-file', `a dataset needs ${DATASET_FILE}`, {
      file: DATASET_FILE,
    });
  }
  let file: SafetensorsFile;
  try {
    file = await SafetensorsFile.open(files[DATASET_FILE]);
  } catch (error) {
    throw asValidationError(error, files);
  }
  try {
    const infos = file.names().map((name) => file.info(name));
    for (const info of infos) checkTensor(info);
    if (!file.has(LABELS)) throw invalid(`a dataset needs ${LABELS} I64 [N]`, { tensor: LABELS });
    if (!file.has('pixel_values') && !file.has('input_ids')) {
      throw invalid('a dataset needs pixel_values F32 [N,C,H,W] or input_ids I64 [N,T]', {
        tensor: 'pixel_values',
      });
    }
    if (file.has('pixel_values') && file.has('input_ids')) {
      throw invalid('a dataset holds pixel_values or input_ids, not both', { tensor: 'input_ids' });
    }
    const examples = file.info(LABELS).shape[0];
    if (examples === 0) throw invalid(`${LABELS} is empty: a dataset needs examples`, { tensor: LABELS });
    for (const info of infos) {
      if (info.shape[0] !== examples) {
        throw invalid(`${info.name} has ${info.shape[0]} examples, ${LABELS} has ${examples}`, {
          tensor: info.name,
        });
      }
      if (info.shape.some((size) => size === 0)) {
        throw invalid(`${info.name} has an empty dimension [${info.shape.join(', ')}]`, {
          tensor: info.name,
        });
      }
    }
    for (const name of TOKEN_COMPANIONS) {
      if (!file.has(name)) continue;
      const ids = file.has('input_ids') ? file.info('input_ids').shape : null;
      const shape = file.info(name).shape;
      if (!ids || shape[1] !== ids[1]) {
        throw invalid(`${name} [${shape.join(', ')}] must have the shape of input_ids`, { tensor: name });
      }
    }
    const metadata = file.metadata;
    const split = metadataField(metadata, 'split');
    if (!(DATASET_SPLITS as readonly string[]).includes(split)) {
      throw invalid(`split must be one of ${DATASET_SPLITS.join(', ')}, got "${split}"`, { field: 'split' });
    }
    const task = metadataField(metadata, 'task');
    if (task.length > MAX_TASK_LENGTH) {
      throw invalid(`task is longer than ${MAX_TASK_LENGTH} characters`, { field: 'task' });
    }
    const classes = classNames(metadata);
    const labels = (await file.read(LABELS)).data as BigInt64Array;
    const count = BigInt(classes.length);
    for (let i = 0; i < labels.length; i++) {
      if (labels[i] < 0n || labels[i] >= count) {
        throw invalid(`labels[${i}] is ${labels[i]}, outside [0, ${classes.length}) given by class_names`, {
          tensor: LABELS,
        });
      }
    }
    return {
      ...summariseTensors(file),
      dataset: {
        examples,
        split: split as DatasetSplit,
        task,
        classes,
        inputs: infos
          .filter((info) => info.name !== LABELS)
          .map((info) => ({ name: info.name, dtype: info.dtype, shape: info.shape })),
      },
    };
  } catch (error) {
    throw asValidationError(error, files);
  } finally {
    await file.close();
  }
}
