// Which file names make up each kind of artifact (Hugging Face model folders, PEFT adapter folders
// plus lorafuse's own extras). Anything else is refused, so a record never holds stray files.
import type { StoredArtifactKind } from './types.ts';

export const MODEL_WEIGHTS = 'model.safetensors';
export const MODEL_INDEX = 'model.safetensors.index.json';
export const MODEL_CONFIG = 'config.json';
export const MODEL_SHARD_PATTERN = /^model-\d{5}-of-\d{5}\.safetensors$/;

export const ADAPTER_CONFIG = 'adapter_config.json';
export const ADAPTER_WEIGHTS = 'adapter_model.safetensors';
export const LORAFUSE_EXTRAS = 'lorafuse.json';
export const LORAFUSE_INIT = 'lorafuse_init.safetensors';

export const DATASET_FILE = 'dataset.safetensors';

/** A report: the JSON document and the page rendered from it alone. */
export const REPORT_JSON = 'report.json';
export const REPORT_HTML = 'report.html';

const ADAPTER_FILES = new Set([ADAPTER_CONFIG, ADAPTER_WEIGHTS, LORAFUSE_EXTRAS, LORAFUSE_INIT]);

export function isAllowedFileName(kind: StoredArtifactKind, name: string): boolean {
  if (kind === 'adapter') return ADAPTER_FILES.has(name);
  if (kind === 'dataset') return name === DATASET_FILE;
  if (kind === 'report') return name === REPORT_JSON || name === REPORT_HTML;
  // lorafuse.json: a fully fine-tuned model's training record.
  return (
    name === MODEL_WEIGHTS ||
    name === MODEL_INDEX ||
    name === MODEL_CONFIG ||
    name === LORAFUSE_EXTRAS ||
    MODEL_SHARD_PATTERN.test(name)
  );
}

export function isJsonFileName(name: string): boolean {
  return name.endsWith('.json');
}

/** Human-readable list for error messages. */
export function allowedFileNames(kind: StoredArtifactKind): string {
  if (kind === 'adapter') return [...ADAPTER_FILES].join(', ');
  if (kind === 'dataset') return DATASET_FILE;
  if (kind === 'report') return `${REPORT_JSON}, ${REPORT_HTML}`;
  return `${MODEL_WEIGHTS}, ${MODEL_INDEX}, model-NNNNN-of-NNNNN.safetensors, ${MODEL_CONFIG}, ${LORAFUSE_EXTRAS}`;
}
