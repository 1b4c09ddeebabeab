// Blobs in an S3-compatible bucket (AWS S3, MinIO, Ceph RGW, R2...) under
// `${prefix}blobs/sha256/ab/cdef...`. Publication is atomic by S3's own rule: an object (multipart
// or not) becomes visible only when its upload completes, and a failed multipart upload is aborted,
// so a failed job leaves nothing. Files reach S3 from the process's local scratch directory, where
// they were hashed and validated first (uploads) or written (job results): the digest is known
// before the first byte is sent, so the final key is the staging key. Readers fetch only the byte
// ranges they ask for (ranged GETs): a merge reads each header and then one tensor at a time.
// The AWS SDK is loaded by init() only, so processes on the local store never pay for importing it.
import { randomUUID } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import fs from 'node:fs/promises';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { GetObjectCommandOutput, S3Client, S3ClientConfig } from '@aws-sdk/client-s3';
import type { RangeSource } from '../tensors/index.ts';
import { type BlobStore, type ByteRange, checkDigest } from './blob-store.ts';

export interface S3BlobStoreOptions {
  bucket: string;
  /** Key prefix inside the bucket ('' or ending in '/'), so deployments can share a bucket. */
  prefix: string;
  region: string;
  /** http(s)://host:port of an S3-compatible server; AWS's own endpoint when absent. */
  endpoint?: string;
  /** Path-style URLs (http://host/bucket/key), as MinIO and most self-hosted servers want. */
  forcePathStyle: boolean;
  /** Multipart upload part size in bytes (S3's minimum is 5 MiB). */
  partSize: number;
  /** Parts uploaded at once: an upload holds at most partSize × queueSize bytes in memory. */
  queueSize: number;
  /** Explicit credentials (tests); otherwise the AWS SDK's usual chain (AWS_ACCESS_KEY_ID, ...). */
  credentials?: S3ClientConfig['credentials'];
}

/** Bytes and requests served by ranged reads, so tests can check that readers fetch only what they need. */
export interface S3ReadStats {
  requests: number;
  bytes: number;
}

/** CopyObject's limit: larger objects are copied part by part. */
const MAX_SINGLE_COPY_BYTES = 5 * 1024 ** 3;
const COPY_PART_BYTES = 512 * 1024 ** 2;

type S3Sdk = typeof import('@aws-sdk/client-s3');
type StorageSdk = typeof import('@aws-sdk/lib-storage');

export class S3BlobStore implements BlobStore {
  readonly kind = 's3' as const;
  readonly stats: S3ReadStats = { requests: 0, bytes: 0 };
  #sdk: { s3: S3Sdk; storage: StorageSdk; client: S3Client } | undefined;

  constructor(readonly options: S3BlobStoreOptions) {
    // The SDK warns on Node 20 about its releases after January 2027; the lock file pins this one,
    // and the warning would otherwise print on every start (an explicit setting is left alone).
    process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
    if (options.prefix !== '' && !options.prefix.endsWith('/')) {
      throw new Error(`S3 key prefix must be empty or end in "/": ${options.prefix}`);
    }
  }

  /** The SDK and its client, once init() loaded them. */
  get sdk(): { s3: S3Sdk; storage: StorageSdk; client: S3Client } {
    if (!this.#sdk) throw new Error('S3BlobStore used before init()');
    return this.#sdk;
  }

  get client(): S3Client {
    return this.sdk.client;
  }

  get location(): string {
    return `s3://${this.options.bucket}/${this.options.prefix}`;
  }

  keyOf(sha256: string): string {
    checkDigest(sha256);
    return `${this.options.prefix}blobs/sha256/${sha256.slice(0, 2)}/${sha256.slice(2)}`;
  }

  /** Checks the bucket; creates it when the server says it does not exist (MinIO, first start). */
  async init(): Promise<void> {
    if (!this.#sdk) {
      const [s3, storage] = await Promise.all([import('@aws-sdk/client-s3'), import('@aws-sdk/lib-storage')]);
      const client = new s3.S3Client({
        region: this.options.region,
        endpoint: this.options.endpoint,
        forcePathStyle: this.options.forcePathStyle,
        credentials: this.options.credentials,
      });
      this.#sdk = { s3, storage, client };
    }
    const { HeadBucketCommand, CreateBucketCommand } = this.sdk.s3;
    try {
      await this.client.send(new HeadBucketCommand({ Bucket: this.options.bucket }));
    } catch (error) {
      if (!isNotFound(error)) throw describeS3Error(error, `bucket ${this.options.bucket}`);
      await this.client.send(new CreateBucketCommand({ Bucket: this.options.bucket })).catch((failure) => {
        throw describeS3Error(failure, `creating bucket ${this.options.bucket}`);
      });
    }
  }

  async probe(): Promise<void> {
    await this.client.send(new this.sdk.s3.HeadBucketCommand({ Bucket: this.options.bucket }));
  }

  private async sizeOf(key: string): Promise<number | null> {
    try {
      const head = await this.client.send(
        new this.sdk.s3.HeadObjectCommand({ Bucket: this.options.bucket, Key: key }),
      );
      return head.ContentLength ?? 0;
    } catch (error) {
      if (isNotFound(error)) return null;
      throw error;
    }
  }

  async exists(sha256: string): Promise<boolean> {
    return (await this.sizeOf(this.keyOf(sha256))) !== null;
  }

  /** A multipart upload streamed from the local file: memory stays at partSize × queueSize. */
  async place(source: string, sha256: string): Promise<void> {
    const key = this.keyOf(sha256);
    if (await this.exists(sha256)) return;
    const upload = new this.sdk.storage.Upload({
      client: this.client,
      params: { Bucket: this.options.bucket, Key: key, Body: createReadStream(source) },
      partSize: this.options.partSize,
      queueSize: this.options.queueSize,
      leavePartsOnError: false,
    });
    await upload.done();
  }

  /** S3 has no rename: the blob is copied to an aside key, then deleted from its place. */
  async moveAside(sha256: string): Promise<string | null> {
    const key = this.keyOf(sha256);
    const size = await this.sizeOf(key);
    if (size === null) return null;
    const aside = `${this.options.prefix}aside/${sha256}-${randomUUID()}`;
    await this.copy(key, aside, size);
    await this.delete(key);
    return aside;
  }

  async restore(aside: string, sha256: string): Promise<void> {
    const key = this.keyOf(sha256);
    if (!(await this.exists(sha256))) {
      const size = await this.sizeOf(aside);
      if (size !== null) await this.copy(aside, key, size);
    }
    await this.delete(aside);
  }

  async dropAside(aside: string): Promise<void> {
    await this.delete(aside);
  }

  async list(): Promise<string[]> {
    const root = `${this.options.prefix}blobs/sha256/`;
    return (await this.listKeys(root)).map((key) => key.slice(root.length).replace('/', '')).sort();
  }

  /** Every key under `prefix` (tests check that nothing but blobs is left). */
  async listKeys(prefix = this.options.prefix): Promise<string[]> {
    const keys: string[] = [];
    let token: string | undefined;
    do {
      const page = await this.client.send(
        new this.sdk.s3.ListObjectsV2Command({
          Bucket: this.options.bucket,
          Prefix: prefix,
          ContinuationToken: token,
        }),
      );
      for (const object of page.Contents ?? []) if (object.Key) keys.push(object.Key);
      token = page.IsTruncated ? page.NextContinuationToken : undefined;
    } while (token);
    return keys;
  }

  ref(sha256: string, size: number, name: string): RangeSource {
    const key = this.keyOf(sha256);
    return new S3RangeSource(this, key, size, `s3://${this.options.bucket}/${key} (${name})`);
  }

  async readStream(sha256: string, range?: ByteRange): Promise<Readable> {
    const object = await this.client.send(
      new this.sdk.s3.GetObjectCommand({
        Bucket: this.options.bucket,
        Key: this.keyOf(sha256),
        Range: range ? `bytes=${range.start}-${range.end}` : undefined,
      }),
    );
    return object.Body as Readable;
  }

  /** Downloads to a temporary name beside `target`, then renames: `target` is whole or absent. */
  async materialize(sha256: string, target: string): Promise<void> {
    await fs.rm(target, { force: true });
    const partial = `${target}.part-${randomUUID()}`;
    try {
      await pipeline(await this.readStream(sha256), createWriteStream(partial, { flags: 'wx' }));
      await fs.rename(partial, target);
    } finally {
      await fs.rm(partial, { force: true });
    }
  }

  async close(): Promise<void> {
    this.#sdk?.client.destroy();
    this.#sdk = undefined;
  }

  private async delete(key: string): Promise<void> {
    await this.client.send(new this.sdk.s3.DeleteObjectCommand({ Bucket: this.options.bucket, Key: key }));
  }

  private copySource(key: string): string {
    return `${this.options.bucket}/${key.split('/').map(encodeURIComponent).join('/')}`;
  }

  /** Server-side copy: CopyObject up to 5 GiB, a multipart copy (UploadPartCopy) beyond. */
  private async copy(from: string, to: string, size: number): Promise<void> {
    const Bucket = this.options.bucket;
    if (size <= MAX_SINGLE_COPY_BYTES) {
      await this.client.send(
        new this.sdk.s3.CopyObjectCommand({ Bucket, Key: to, CopySource: this.copySource(from) }),
      );
      return;
    }
    const { UploadId } = await this.client.send(
      new this.sdk.s3.CreateMultipartUploadCommand({ Bucket, Key: to }),
    );
    try {
      const parts = [];
      for (let start = 0, part = 1; start < size; start += COPY_PART_BYTES, part++) {
        const end = Math.min(start + COPY_PART_BYTES, size) - 1;
        const copied = await this.client.send(
          new this.sdk.s3.UploadPartCopyCommand({
            Bucket,
            Key: to,
            UploadId,
            PartNumber: part,
            CopySource: this.copySource(from),
            CopySourceRange: `bytes=${start}-${end}`,
          }),
        );
        parts.push({ PartNumber: part, ETag: copied.CopyPartResult?.ETag });
      }
      await this.client.send(
        new this.sdk.s3.CompleteMultipartUploadCommand({
          Bucket,
          Key: to,
          UploadId,
          MultipartUpload: { Parts: parts },
        }),
      );
    } catch (error) {
      await this.client
        .send(new this.sdk.s3.AbortMultipartUploadCommand({ Bucket, Key: to, UploadId }))
        .catch(() => undefined);
      throw error;
    }
  }
}

/** One object read by ranged GETs: each read() is one request for exactly the bytes asked for. */
class S3RangeSource implements RangeSource {
  constructor(
    private readonly store: S3BlobStore,
    private readonly key: string,
    readonly size: number,
    readonly name: string,
  ) {}

  async read(target: Uint8Array, targetOffset: number, length: number, position: number): Promise<number> {
    if (length === 0 || position >= this.size) return 0;
    const last = Math.min(position + length, this.size) - 1;
    let object: GetObjectCommandOutput;
    try {
      object = await this.store.client.send(
        new this.store.sdk.s3.GetObjectCommand({
          Bucket: this.store.options.bucket,
          Key: this.key,
          Range: `bytes=${position}-${last}`,
        }),
      );
    } catch (error) {
      // The object is shorter than its record says: the reader reports a truncated file.
      if ((error as { name?: string }).name === 'InvalidRange') return 0;
      throw error;
    }
    this.store.stats.requests++;
    let done = 0;
    for await (const chunk of object.Body as Readable) {
      const bytes = chunk as Uint8Array;
      const take = Math.min(bytes.length, length - done);
      target.set(take === bytes.length ? bytes : bytes.subarray(0, take), targetOffset + done);
      done += take;
    }
    this.store.stats.bytes += done;
    return done;
  }

  async close(): Promise<void> {}
}

function isNotFound(error: unknown): boolean {
  const failure = error as { name?: string; $metadata?: { httpStatusCode?: number } };
  return (
    failure?.name === 'NotFound' ||
    failure?.name === 'NoSuchKey' ||
    failure?.name === 'NoSuchBucket' ||
    failure?.$metadata?.httpStatusCode === 404
  );
}

function describeS3Error(error: unknown, what: string): Error {
  const failure = error as { name?: string; message?: string; $metadata?: { httpStatusCode?: number } };
  const status = failure?.$metadata?.httpStatusCode;
  return new Error(
    `S3 ${what}: ${failure?.name ?? 'error'}${status ? ` (HTTP ${status})` : ''}: ${failure?.message ?? String(error)}`,
    { cause: error },
  );
}
