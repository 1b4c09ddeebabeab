// A real S3-compatible server for tests: s3rver (pure npm, files on disk, speaks the S3 REST API
// including ranged GETs, multipart uploads and server-side copies) on a free loopback port, one per
// test file, and a unique key prefix per test so that tests never see each other's blobs.
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import S3rver from 's3rver';
import { S3BlobStore } from '../../src/store/index.ts';
import { uniquePrefix } from './redis.ts';

export const TEST_BUCKET = 'lorafuse-test';
/** s3rver accepts exactly these credentials. */
export const TEST_CREDENTIALS = { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' };

export interface TestS3 {
  endpoint: string;
  /** The environment a lorafuse process needs to use this server (LORAFUSE_BLOB_STORE=s3 ...). */
  env(prefix: string): Record<string, string>;
  /** A blob store on this server under a fresh prefix. */
  blobStore(options?: { prefix?: string; partSize?: number }): S3BlobStore;
  stop(): Promise<void>;
}

export async function startTestS3(): Promise<TestS3> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'lorafuse-s3-'));
  const server = new S3rver({
    address: '127.0.0.1',
    port: 0,
    silent: true,
    directory: dir,
    configureBuckets: [{ name: TEST_BUCKET }],
  });
  const { port } = await server.run();
  const endpoint = `http://127.0.0.1:${port}`;
  return {
    endpoint,
    env: (prefix) => ({
      LORAFUSE_BLOB_STORE: 's3',
      LORAFUSE_S3_ENDPOINT: endpoint,
      LORAFUSE_S3_BUCKET: TEST_BUCKET,
      LORAFUSE_S3_PREFIX: prefix,
      LORAFUSE_S3_REGION: 'us-east-1',
      AWS_ACCESS_KEY_ID: TEST_CREDENTIALS.accessKeyId,
      AWS_SECRET_ACCESS_KEY: TEST_CREDENTIALS.secretAccessKey,
    }),
    blobStore: (options = {}) =>
      new S3BlobStore({
        bucket: TEST_BUCKET,
        prefix: `${options.prefix ?? uniquePrefix('s3')}/`,
        region: 'us-east-1',
        endpoint,
        forcePathStyle: true,
        partSize: options.partSize ?? 5 * 1024 * 1024,
        queueSize: 2,
        credentials: TEST_CREDENTIALS,
      }),
    async stop() {
      await server.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
