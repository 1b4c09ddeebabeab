export {
  AccessError,
  AccessStore,
  DEFAULT_PROJECT,
  isProjectName,
  parseScopes,
  projectWebhookSecret,
  projectWebhookSecrets,
  SCOPES,
  hashesMatch,
  hashToken,
} from './access.ts';
export type { ApiKeyRecord, Principal, ProjectRecord, Scope } from './access.ts';
export { ArtifactInputs, MissingArtifactError, requireArtifact } from './artifact-inputs.ts';
export { HeaderCache } from './header-cache.ts';
export type { StoredAdapterSource, StoredModelSource } from './artifact-inputs.ts';
export { ArtifactStore, InvalidCursorError, StagedUpload } from './artifact-store.ts';
export type { ArtifactPage, ArtifactStoreOptions } from './artifact-store.ts';
export { artifactDigest, DIGEST_PATTERN } from './artifact-digest.ts';
export { isArtifactId, kindOfId, newArtifactId } from './artifact-id.ts';
export * from './artifact-layout.ts';
export type { BlobStore, ByteRange } from './blob-store.ts';
export { createBlobStore } from './create-blob-store.ts';
export { FsBlobStore } from './fs-blob-store.ts';
export { LocalScratch } from './local-scratch.ts';
export type { HashedFile } from './local-scratch.ts';
export { S3BlobStore } from './s3-blob-store.ts';
export type { S3BlobStoreOptions, S3ReadStats } from './s3-blob-store.ts';
export { ArtifactValidationError, UploadTooLargeError } from './errors.ts';
export { StalePublicationError } from './publication.ts';
export type { Publication } from './publication.ts';
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
