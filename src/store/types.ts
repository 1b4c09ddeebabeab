// The artifact record as clients and workers see it; the blobs it names live in the blob store.

export type StoredArtifactKind = 'model' | 'adapter';

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
}

export interface ArtifactRecord {
  id: string;
  kind: StoredArtifactKind;
  files: ArtifactFile[];
  tensorCount: number;
  parameterCount: number;
  dtypes: string[];
  createdAt: string;
  lineage: Lineage | null;
  /* adapters only: */
  rank?: number;
  targets?: string[];
  baseModel?: string | null;
  config?: Record<string, unknown>;
}

/** What inspecting an artifact's files tells us (everything in a record but identity and lineage). */
export interface ArtifactSummary {
  tensorCount: number;
  parameterCount: number;
  dtypes: string[];
  rank?: number;
  targets?: string[];
  config?: Record<string, unknown>;
}
