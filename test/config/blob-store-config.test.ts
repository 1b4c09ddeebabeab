import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ConfigError, loadConfig } from '../../src/config.ts';

describe('blob store settings', () => {
  it('defaults to the data directory', () => {
    assert.deepEqual(loadConfig({}).blobStore, { kind: 'fs' });
    assert.deepEqual(loadConfig({ LORAFUSE_BLOB_STORE: 'FS' }).blobStore, { kind: 'fs' });
  });

  it('reads an S3-compatible endpoint with path-style URLs by default', () => {
    const config = loadConfig({
      LORAFUSE_BLOB_STORE: 's3',
      LORAFUSE_S3_BUCKET: 'models.team-a',
      LORAFUSE_S3_ENDPOINT: 'http://minio:9000',
      LORAFUSE_S3_PREFIX: '/prod/lorafuse',
      LORAFUSE_S3_PART_MB: '64',
      LORAFUSE_S3_UPLOAD_QUEUE: '8',
    });
    assert.deepEqual(config.blobStore, {
      kind: 's3',
      bucket: 'models.team-a',
      prefix: 'prod/lorafuse/',
      region: 'us-east-1',
      endpoint: 'http://minio:9000',
      forcePathStyle: true,
      partSize: 64 * 1024 * 1024,
      queueSize: 8,
    });
  });

  it('on AWS: virtual-hosted URLs, the region from AWS_REGION, no prefix', () => {
    const config = loadConfig({
      LORAFUSE_BLOB_STORE: 's3',
      LORAFUSE_S3_BUCKET: 'abc',
      AWS_REGION: 'eu-west-3',
    });
    assert.deepEqual(config.blobStore, {
      kind: 's3',
      bucket: 'abc',
      prefix: '',
      region: 'eu-west-3',
      endpoint: undefined,
      forcePathStyle: false,
      partSize: 16 * 1024 * 1024,
      queueSize: 4,
    });
    const explicit = loadConfig({
      LORAFUSE_BLOB_STORE: 's3',
      LORAFUSE_S3_BUCKET: 'abc',
      LORAFUSE_S3_REGION: 'us-west-2',
      AWS_REGION: 'eu-west-3',
      LORAFUSE_S3_FORCE_PATH_STYLE: 'true',
    }).blobStore;
    assert.equal(explicit.kind === 's3' && explicit.region, 'us-west-2');
    assert.equal(explicit.kind === 's3' && explicit.forcePathStyle, true);
  });

  for (const [env, variable] of [
    [{ LORAFUSE_BLOB_STORE: 'gcs' }, 'LORAFUSE_BLOB_STORE'],
    [{ LORAFUSE_BLOB_STORE: 's3' }, 'LORAFUSE_S3_BUCKET'],
    [{ LORAFUSE_BLOB_STORE: 's3', LORAFUSE_S3_BUCKET: 'Upper_Case' }, 'LORAFUSE_S3_BUCKET'],
    [
      { LORAFUSE_BLOB_STORE: 's3', LORAFUSE_S3_BUCKET: 'ok-bucket', LORAFUSE_S3_ENDPOINT: 'minio:9000' },
      'LORAFUSE_S3_ENDPOINT',
    ],
    [
      { LORAFUSE_BLOB_STORE: 's3', LORAFUSE_S3_BUCKET: 'ok-bucket', LORAFUSE_S3_PART_MB: '4' },
      'LORAFUSE_S3_PART_MB',
    ],
    [
      { LORAFUSE_BLOB_STORE: 's3', LORAFUSE_S3_BUCKET: 'ok-bucket', LORAFUSE_S3_FORCE_PATH_STYLE: 'maybe' },
      'LORAFUSE_S3_FORCE_PATH_STYLE',
    ],
  ] as const) {
    it(`names ${variable} when ${JSON.stringify(env)} is wrong`, () => {
      assert.throws(
        () => loadConfig(env),
        (error: unknown) => error instanceof ConfigError && error.variable === variable,
      );
    });
  }
});
