// Picks the blob store the configuration names: the data directory, or an S3-compatible bucket.
import type { BlobStoreConfig } from '../config.ts';
import type { BlobStore } from './blob-store.ts';
import { FsBlobStore } from './fs-blob-store.ts';
import { S3BlobStore } from './s3-blob-store.ts';

export function createBlobStore(config: { blobStore: BlobStoreConfig; dataDir: string }): BlobStore {
  const settings = config.blobStore;
  if (settings.kind === 'fs') return new FsBlobStore(config.dataDir);
  return new S3BlobStore({
    bucket: settings.bucket,
    prefix: settings.prefix,
    region: settings.region,
    endpoint: settings.endpoint,
    forcePathStyle: settings.forcePathStyle,
    partSize: settings.partSize,
    queueSize: settings.queueSize,
  });
}
