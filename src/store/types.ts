// The artifact record as clients and workers see it; the blobs it names live in the blob store.

/** `head`: a stored linear task head; `report`: report.json + report.html of an evaluated merge or search. */
export type StoredArtifactKind = 'model' | 'adapter' | 'dataset' | 'head' | 'report';

export interface ArtifactFile {
  name: string;
  size: number;
  sha256: string;
}

export interface Lineage {
  parents: Array<{ kind: string; id: string }>;
  recipe?: Record<string, unknown>;
  jobId?: string;
  lorafuseVersion: string;
  /** Fine-tuned results: base, dataset, mode, hyperparameters, seed, steps and final metrics. */
  training?: Record<string, unknown>;
}

/** One model input a dataset holds, under its Hugging Face name. */
export interface DatasetInput {
  name: string;
  dtype: string;
  shape: number[];
}

/** What a dataset record tells about its examples (from dataset.safetensors' header and metadata). */
export interface DatasetSummary {
  examples: number;
  split: DatasetSplit;
  task: string;
  classes: string[];
  inputs: DatasetInput[];
}

export const DATASET_SPLITS = ['train', 'validation', 'test'] as const;
export type DatasetSplit = (typeof DATASET_SPLITS)[number];

export interface ArtifactRecord {
  id: string;
  kind: StoredArtifactKind;
  /** The project it belongs to; absent on records written before projects existed (the default project). */
  project?: string;
  files: ArtifactFile[];
  tensorCount: number;
  parameterCount: number;
  dtypes: string[];
  createdAt: string;
  lineage: Lineage | null;
  /** sha256 of the file manifest (artifact-digest.ts); absent on records written before it existed. */
  digest?: string;
  /* adapters only: */
  rank?: number;
  targets?: string[];
  baseModel?: string | null;
  config?: Record<string, unknown>;
  /* datasets only: */
  examples?: number;
  split?: DatasetSplit;
  task?: string;
  classes?: string[];
  inputs?: DatasetInput[];
  /* heads only: */
  head?: HeadSummary;
}

/** A stored task head: logits = x·weightᵀ + bias, weight [classes, features]. */
export interface HeadSummary {
  classes: number;
  features: number;
  bias: boolean;
}

/** What inspecting an artifact's files tells us (everything in a record but identity and lineage). */
export interface ArtifactSummary {
  tensorCount: number;
  parameterCount: number;
  dtypes: string[];
  rank?: number;
  targets?: string[];
  config?: Record<string, unknown>;
  dataset?: DatasetSummary;
  head?: HeadSummary;
}
