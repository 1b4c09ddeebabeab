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

/** A stored head: `weight` [classes, features] and optional `bias` [classes]. */
export const HEAD_FILE = 'head.safetensors';
/**
 * The per-task heads a merge keeps beside its merged weights (heads are never averaged across tasks):
 * `<task>.weight` [classes, features] and `<task>.bias`, the task names in order under metadata `tasks`.
 */
export const TASK_HEADS_FILE = 'lorafuse_heads.safetensors';

export const REPORT_JSON = 'report.json';
export const REPORT_HTML = 'report.html';

const ADAPTER_FILES = new Set([
  ADAPTER_CONFIG,
  ADAPTER_WEIGHTS,
  LORAFUSE_EXTRAS,
  LORAFUSE_INIT,
  TASK_HEADS_FILE,
]);

export function isAllowedFileName(kind: StoredArtifactKind, name: string): boolean {
  if (kind === 'adapter') return ADAPTER_FILES.has(name);
  if (kind === 'dataset') return name === DATASET_FILE;
  if (kind === 'head') return name === HEAD_FILE;
  if (kind === 'report') return name === REPORT_JSON || name === REPORT_HTML;
  // lorafuse.json: a fully fine-tuned model's training record.
  return (
    name === MODEL_WEIGHTS ||
    name === MODEL_INDEX ||
    name === MODEL_CONFIG ||
    name === LORAFUSE_EXTRAS ||
    name === TASK_HEADS_FILE ||
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
  if (kind === 'head') return HEAD_FILE;
  if (kind === 'report') return `${REPORT_JSON}, ${REPORT_HTML}`;
  return `${MODEL_WEIGHTS}, ${MODEL_INDEX}, model-NNNNN-of-NNNNN.safetensors, ${MODEL_CONFIG}, ${LORAFUSE_EXTRAS}, ${TASK_HEADS_FILE}`;
}
