export { ArtifactInputs, MissingArtifactError, requireArtifact } from './artifact-inputs.ts';
export type { StoredAdapterSource, StoredModelSource } from './artifact-inputs.ts';
export { ArtifactStore, InvalidCursorError, StagedUpload } from './artifact-store.ts';
export type { ArtifactPage, ArtifactStoreOptions } from './artifact-store.ts';
export { isArtifactId, kindOfId, newArtifactId } from './artifact-id.ts';
export * from './artifact-layout.ts';
export { BlobStore } from './blob-store.ts';
export type { HashedFile } from './blob-store.ts';
export { ArtifactValidationError, UploadTooLargeError } from './errors.ts';
export { loraModules } from './inspect-adapter.ts';
export { readJsonObject } from './read-json.ts';
export type { LoraModuleShape } from './inspect-adapter.ts';
export { LORAFUSE_VERSION } from './version.ts';
export { DATASET_SPLITS } from './types.ts';
export type {
  HeadSummary,
  ArtifactFile,
  ArtifactRecord,
  ArtifactSummary,
  DatasetInput,
  DatasetSplit,
  DatasetSummary,
  Lineage,
  StoredArtifactKind,
} from './types.ts';
