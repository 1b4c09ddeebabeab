// Artifact records in Redis (one JSON record per artifact, a per-kind index ordered by creation
// time) and their files in the content-addressed blob store (the data directory or an S3 bucket).
// Blob reference counts live in Redis beside the records, so a blob shared by several artifacts is
// removed only with its last user. Files are staged and validated in the local scratch directory
// before anything is stored. Every record belongs to a project: a store is a view of one project
// (`forProject`), whose indexes and digest lookups see only that project's records; the blobs underneath
// are shared by content, which no project can observe (dedup answers only within a project).
import fs from 'node:fs/promises';
import path from 'node:path';
import type { Readable } from 'node:stream';
import type { Redis } from 'ioredis';
import type { FileRef } from '../tensors/index.ts';
import { isAllowedFileName, allowedFileNames } from './artifact-layout.ts';
import { artifactDigest } from './artifact-digest.ts';
import { isArtifactId, kindOfId, newArtifactId } from './artifact-id.ts';
import type { BlobStore } from './blob-store.ts';
import { FsBlobStore } from './fs-blob-store.ts';
import { type HashedFile, LocalScratch } from './local-scratch.ts';
import { assertProjectName, DEFAULT_PROJECT } from './access.ts';
import { ArtifactValidationError } from './errors.ts';
import { inspectAdapter } from './inspect-adapter.ts';
import { inspectDataset } from './inspect-dataset.ts';
import { inspectHead } from './inspect-head.ts';
import { inspectReport } from './inspect-report.ts';
import { inspectModel } from './inspect-model.ts';
import { PUBLISH_SCRIPT, type Publication, StalePublicationError } from './publication.ts';
import type { ArtifactFile, ArtifactRecord, ArtifactSummary, Lineage, StoredArtifactKind } from './types.ts';

export interface ArtifactStoreOptions {
  redis: Redis;
  /** Local scratch (tmp/) for staging; also the blobs' home when `blobs` is not given. */
  dataDir: string;
  prefix: string;
  /** Where blobs live; the data directory (FsBlobStore) by default. */
  blobs?: BlobStore;
  /** The project this view reads and writes (DEFAULT_PROJECT when not given). */
  project?: string;
}

export interface ArtifactPage {
  items: ArtifactRecord[];
  nextCursor: string | null;
}

export class InvalidCursorError extends Error {
  constructor() {
    super('cursor is not one this service issued');
    this.name = 'InvalidCursorError';
  }
}

/** Decrements each digest's count; returns the digests no record references any more. */
const RELEASE_SCRIPT = `
local orphans = {}
for i, sha in ipairs(ARGV) do
  if redis.call('HINCRBY', KEYS[1], sha, -1) <= 0 then
    redis.call('HDEL', KEYS[1], sha)
    table.insert(orphans, sha)
  end
end
return orphans`;

/** Removes a record of project ARGV[2] (ARGV[3]: the default), its index and digest entries and releases its blobs, atomically. */
const DELETE_SCRIPT = `
local json = redis.call('GET', KEYS[1])
if not json then return false end
local record = cjson.decode(json)
local owner = record.project
if type(owner) ~= 'string' then owner = ARGV[3] end
if owner ~= ARGV[2] then return false end
redis.call('DEL', KEYS[1])
redis.call('ZREM', KEYS[2], ARGV[1])
if type(record.digest) == 'string' and redis.call('HGET', KEYS[4], record.digest) == ARGV[1] then
  redis.call('HDEL', KEYS[4], record.digest)
end
local orphans = {}
for i, file in ipairs(record.files) do
  if redis.call('HINCRBY', KEYS[3], file.sha256, -1) <= 0 then
    redis.call('HDEL', KEYS[3], file.sha256)
    table.insert(orphans, file.sha256)
  end
end
return {json, orphans}`;

/**
 * A holder (a sharded merge job) keeps blob `ARGV[2]` under slot `ARGV[1]`: one reference per slot, so a retried
 * shard that writes the same bytes again counts once. Returns a digest the slot held before and no longer
 * references, when nothing else does.
 */
const HOLD_SCRIPT = `
local previous = redis.call('HGET', KEYS[1], ARGV[1])
if previous == ARGV[2] then return false end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
redis.call('HINCRBY', KEYS[2], ARGV[2], 1)
if previous and redis.call('HINCRBY', KEYS[2], previous, -1) <= 0 then
  redis.call('HDEL', KEYS[2], previous)
  return previous
end
return false`;

/** Drops every blob a holder keeps; returns the digests no one references any more. */
const RELEASE_HOLDS_SCRIPT = `
local held = redis.call('HVALS', KEYS[1])
redis.call('DEL', KEYS[1])
local orphans = {}
for i, sha in ipairs(held) do
  if redis.call('HINCRBY', KEYS[2], sha, -1) <= 0 then
    redis.call('HDEL', KEYS[2], sha)
    table.insert(orphans, sha)
  end
end
return orphans`;

export class ArtifactStore {
  readonly blobs: BlobStore;
  readonly scratch: LocalScratch;
  /** Uploads being staged, each with its settled promise: close() waits for them (no orphan staging files). */
  private readonly staging = new Map<StagedUpload, Promise<void>>();
  /** The project whose artifacts this view sees; records of other projects read as missing. */
  readonly project: string;
  private readonly redis: Redis;
  private readonly prefix: string;

  constructor(options: ArtifactStoreOptions) {
    this.redis = options.redis;
    this.prefix = options.prefix;
    this.project = options.project ?? DEFAULT_PROJECT;
    assertProjectName(this.project);
    this.scratch = new LocalScratch(options.dataDir);
    this.blobs = options.blobs ?? new FsBlobStore(options.dataDir);
  }

  /**
   * The same store (connections, blobs, scratch) seen as `project`: what a request of that project or a job
   * it queued works with. Cheap: it shares everything but the project.
   */
  forProject(project: string): ArtifactStore {
    if (project === this.project) return this;
    assertProjectName(project);
    const view = Object.create(this) as ArtifactStore;
    Object.defineProperty(view, 'project', { value: project, enumerable: true });
    return view;
  }

  /** Records written before projects existed carry none: they are the default project's. */
  private owns(record: ArtifactRecord): boolean {
    return (record.project ?? DEFAULT_PROJECT) === this.project;
  }

  /** The default project keeps the key names of the time before projects, so existing data stays listed. */
  private projectKey(rest: string): string {
    return this.project === DEFAULT_PROJECT
      ? `${this.prefix}:${rest}`
      : `${this.prefix}:project:${this.project}:${rest}`;
  }

  get dataDir(): string {
    return this.scratch.dataDir;
  }

  /** Readies the blob store and sweeps temporary files a crashed process left behind. */
  async init(): Promise<void> {
    await this.blobs.init();
    await this.scratch.init();
  }

  /**
   * Waits for the uploads still being staged to be committed or discarded (at shutdown their
   * connections are ended first, so each ends soon), then releases the blob store's connections (S3).
   * Redis belongs to the caller.
   */
  async close(): Promise<void> {
    while (this.staging.size > 0) await Promise.all(this.staging.values());
    await this.blobs.close();
  }

  private recordKey(id: string): string {
    return `${this.prefix}:artifact:${id}`;
  }

  private indexKey(kind: StoredArtifactKind): string {
    return this.projectKey(`artifacts:${kind}`);
  }

  /** Per project and kind: content digest -> the newest artifact id with that content (artifact-digest.ts). */
  private digestKey(kind: StoredArtifactKind): string {
    return this.projectKey(`digests:${kind}`);
  }

  private get refsKey(): string {
    return `${this.prefix}:blobrefs`;
  }

  private holdsKey(holder: string): string {
    return `${this.prefix}:blobholds:${holder}`;
  }

  /**
   * Publishes a finished local file as a blob that `holder` keeps (under `slot`) until releaseHolds: the pieces
   * of an artifact made on several machines (a sharded merge's shards) wait in the blob store, counted like
   * any other reference, until one record takes them (ingestDirectory's `stored`) or the holder gives up.
   */
  async holdBlob(holder: string, slot: string, file: HashedFile): Promise<void> {
    // Counted before it exists, as commit does: a concurrent delete of another user then keeps the blob.
    const replaced = (await this.redis.eval(
      HOLD_SCRIPT,
      2,
      this.holdsKey(holder),
      this.refsKey,
      slot,
      file.sha256,
    )) as string | null;
    await this.blobs.place(file.path, file.sha256);
    if (replaced) await this.removeOrphans([replaced]);
  }

  /** What `holder` keeps: slot -> digest. */
  async holds(holder: string): Promise<Record<string, string>> {
    return this.redis.hgetall(this.holdsKey(holder));
  }

  /** Releases every blob `holder` keeps; those no record references are deleted. */
  async releaseHolds(holder: string): Promise<void> {
    const orphans = (await this.redis.eval(
      RELEASE_HOLDS_SCRIPT,
      2,
      this.holdsKey(holder),
      this.refsKey,
    )) as string[];
    await this.removeOrphans(orphans);
  }

  /** Starts an upload: files are staged under tmp/ until commit or discard. */
  stage(kind: StoredArtifactKind): StagedUpload {
    let settle: () => void = () => undefined;
    const settled = new Promise<void>((resolve) => {
      settle = resolve;
    });
    const upload = new StagedUpload(this, kind, () => {
      this.staging.delete(upload);
      settle();
    });
    this.staging.set(upload, settled);
    return upload;
  }

  /**
   * Ingests a finished folder (a worker's result): validates, hashes, links files into the blob
   * store, writes the record. `baseModel`: the model id a fine-tuned adapter was trained on.
   * `publication`: a job's result, published at most once per job and only while the job holds its lock
   * (publication.ts); a repeated publication returns the record the job already published.
   */
  async ingestDirectory(
    kind: StoredArtifactKind,
    dir: string,
    lineage: Lineage,
    options: {
      baseModel?: string | null;
      publication?: Publication;
      /** Files of the artifact that are blobs already (kept by holdBlob): validated where they are, not copied. */
      stored?: ArtifactFile[];
    } = {},
  ): Promise<ArtifactRecord> {
    const stored = options.stored ?? [];
    const files = new Map<string, HashedFile>();
    for (const entry of await fs.readdir(dir, { withFileTypes: true })) {
      if (!entry.isFile() || !isAllowedFileName(kind, entry.name)) {
        throw new ArtifactValidationError(
          'unexpected-file',
          `${entry.name} is not part of a ${kind} (expected ${allowedFileNames(kind)})`,
          { file: entry.name },
        );
      }
      files.set(entry.name, await this.scratch.hashFile(path.join(dir, entry.name)));
    }
    const refs: Record<string, FileRef> = pathsOf(files);
    for (const file of stored) {
      if (files.has(file.name) || !isAllowedFileName(kind, file.name)) {
        throw new ArtifactValidationError(
          'unexpected-file',
          `${file.name} is given twice or not part of a ${kind}`,
          {
            file: file.name,
          },
        );
      }
      if (!(await this.blobs.exists(file.sha256)))
        throw new Error(`blob ${file.sha256} (${file.name}) is missing`);
      refs[file.name] = this.blobs.ref(file.sha256, file.size, file.name);
    }
    if (stored.length > 0 && kind !== 'model') throw new Error('only model shards are ingested from blobs');
    const summary = stored.length > 0 ? await inspectModel(refs) : await this.inspect(kind, pathsOf(files));
    return this.commit(kind, files, summary, {
      lineage,
      baseModel: options.baseModel ?? null,
      publication: options.publication,
      stored,
    });
  }

  /** Validates files (name -> path) of an artifact of `kind`; throws ArtifactValidationError. */
  inspect(kind: StoredArtifactKind, files: Record<string, string>): Promise<ArtifactSummary> {
    if (kind === 'dataset') return inspectDataset(files);
    if (kind === 'head') return inspectHead(files);
    if (kind === 'report') return inspectReport(files);
    return kind === 'model' ? inspectModel(files) : inspectAdapter(files);
  }

  /** Places the files as blobs and writes the record; on failure no blob of this commit stays unreferenced. */
  async commit(
    kind: StoredArtifactKind,
    files: Map<string, HashedFile>,
    summary: ArtifactSummary,
    extras: {
      lineage: Lineage | null;
      baseModel?: string | null;
      publication?: Publication;
      stored?: ArtifactFile[];
    },
  ): Promise<ArtifactRecord> {
    const createdAt = new Date();
    const record: ArtifactRecord = {
      id: newArtifactId(kind, createdAt.getTime()),
      kind,
      project: this.project,
      files: [...files.entries()]
        .map(([name, file]) => ({ name, size: file.size, sha256: file.sha256 }))
        .concat((extras.stored ?? []).map(({ name, size, sha256 }) => ({ name, size, sha256 })))
        .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0)),
      tensorCount: summary.tensorCount,
      parameterCount: summary.parameterCount,
      dtypes: summary.dtypes,
      createdAt: createdAt.toISOString(),
      lineage: extras.lineage,
    };
    record.digest = artifactDigest(record.files);
    if (kind === 'adapter') {
      record.rank = summary.rank;
      record.targets = summary.targets;
      record.baseModel = extras.baseModel ?? null;
      record.config = summary.config;
    }
    if (kind === 'dataset' && summary.dataset) Object.assign(record, summary.dataset);
    if (kind === 'head' && summary.head) record.head = summary.head;
    const digests = record.files.map((file) => file.sha256);
    // Count the references before the blobs exist: a concurrent delete of the last other user then
    // sees a live count and keeps (or restores) the blob.
    const acquire = this.redis.multi();
    for (const sha of digests) acquire.hincrby(this.refsKey, sha, 1);
    await acquire.exec();
    let outcome: [string, string?];
    try {
      for (const file of files.values()) await this.blobs.place(file.path, file.sha256);
      outcome = await this.publish(record, extras.publication);
    } catch (error) {
      await this.releaseBlobs(digests);
      throw error;
    }
    if (outcome[0] === 'stored') return record;
    // Not stored: this commit's references go; blobs the published record shares keep their count.
    await this.releaseBlobs(digests);
    const published = outcome[0] === 'existing' ? await this.get(outcome[1] as string) : null;
    if (!published) throw new StalePublicationError(extras.publication?.key ?? record.id);
    return published;
  }

  /** Writes the record, index and digest entries in one script, under the publication's rules. */
  private async publish(record: ArtifactRecord, publication?: Publication): Promise<[string, string?]> {
    const keys = [this.recordKey(record.id), this.indexKey(record.kind), this.digestKey(record.kind)];
    if (publication) keys.push(publication.key);
    if (publication?.guard) keys.push(publication.guard.key);
    return (await this.redis.eval(
      PUBLISH_SCRIPT,
      keys.length,
      ...keys,
      JSON.stringify(record),
      record.id,
      record.digest as string,
      publication ? '1' : '0',
      publication?.guard ? '1' : '0',
      publication?.guard?.token ?? '',
      String(publication?.ttlSeconds ?? 0),
      this.recordKey(''),
    )) as [string, string?];
  }

  async get(id: string): Promise<ArtifactRecord | null> {
    if (!isArtifactId(id)) return null;
    const json = await this.redis.get(this.recordKey(id));
    const record = json === null ? null : (JSON.parse(json) as ArtifactRecord);
    // Another project's id reads exactly like an unknown one (404, never 403).
    return record && this.owns(record) ? record : null;
  }

  /** Records of one kind, newest first; `cursor` is the opaque value a previous page returned. */
  async list(kind: StoredArtifactKind, query: { limit: number; cursor?: string }): Promise<ArtifactPage> {
    let start = '+';
    if (query.cursor) {
      const after = decodeCursor(query.cursor);
      if (kindOfId(after) !== kind) throw new InvalidCursorError();
      start = `(${after}`;
    }
    const ids = await this.redis.zrange(
      this.indexKey(kind),
      start,
      '-',
      'BYLEX',
      'REV',
      'LIMIT',
      0,
      query.limit + 1,
    );
    const page = ids.slice(0, query.limit);
    const json = page.length > 0 ? await this.redis.mget(page.map((id) => this.recordKey(id))) : [];
    const items = json
      .filter((value): value is string => value !== null)
      .map((value) => JSON.parse(value) as ArtifactRecord)
      .filter((record) => this.owns(record));
    const nextCursor = ids.length > query.limit ? encodeCursor(page[page.length - 1]) : null;
    return { items, nextCursor };
  }

  /** The artifact of `kind` whose files have this content digest, or null (artifact-digest.ts). */
  async findByDigest(kind: StoredArtifactKind, digest: string): Promise<ArtifactRecord | null> {
    const id = await this.redis.hget(this.digestKey(kind), digest);
    const record = id ? await this.get(id) : null;
    return record && record.kind === kind && record.digest === digest ? record : null;
  }

  async count(kind: StoredArtifactKind): Promise<number> {
    return this.redis.zcard(this.indexKey(kind));
  }

  private deletingKey(id: string): string {
    return `${this.prefix}:deleting:${id}`;
  }

  /**
   * Deletes `id` unless `jobsUsing` names a pending job that reads it. Closes the race with a job being
   * queued at the same moment: the artifact is marked as being deleted BEFORE the in-use check, and
   * submitters call `stillAvailable` AFTER queueing, so one of the two always sees the other.
   */
  async deleteUnlessUsed(
    id: string,
    jobsUsing: (id: string) => Promise<string[]>,
  ): Promise<{ deleted: boolean; jobs: string[]; busy: boolean }> {
    const marked = await this.redis.set(this.deletingKey(id), '1', 'PX', 60_000, 'NX');
    if (marked === null) return { deleted: false, jobs: [], busy: true };
    try {
      const jobs = await jobsUsing(id);
      if (jobs.length > 0) return { deleted: false, jobs, busy: false };
      return { deleted: await this.delete(id), jobs: [], busy: false };
    } finally {
      await this.redis.del(this.deletingKey(id));
    }
  }

  /** The ids among `ids` that are missing or being deleted (checked by a submitter after queueing). */
  async unavailable(ids: readonly string[]): Promise<string[]> {
    if (ids.length === 0) return [];
    const pipeline = this.redis.pipeline();
    for (const id of ids) pipeline.exists(this.recordKey(id)).exists(this.deletingKey(id));
    const results = (await pipeline.exec()) ?? [];
    return ids.filter((_, i) => {
      const [recordError, record] = results[2 * i] ?? [null, 0];
      const [flagError, deleting] = results[2 * i + 1] ?? [null, 0];
      return recordError !== null || flagError !== null || record !== 1 || deleting !== 0;
    });
  }

  /** Removes the record and every blob no other record uses; false when there was no such record. */
  async delete(id: string): Promise<boolean> {
    const kind = kindOfId(id);
    if (!kind) return false;
    const result = (await this.redis.eval(
      DELETE_SCRIPT,
      4,
      this.recordKey(id),
      this.indexKey(kind),
      this.refsKey,
      this.digestKey(kind),
      id,
      this.project,
      DEFAULT_PROJECT,
    )) as [string, string[]] | null;
    if (!result) return false;
    await this.removeOrphans(result[1]);
    return true;
  }

  /**
   * file name -> how to read it (Checkpoint.openFiles, readJsonObject): a blob path on disk, or a
   * RangeSource reading byte ranges from S3. Nothing is fetched here.
   */
  fileRefs(record: ArtifactRecord): Record<string, FileRef> {
    const refs: Record<string, FileRef> = {};
    for (const file of record.files) refs[file.name] = this.blobs.ref(file.sha256, file.size, file.name);
    return refs;
  }

  /** file name -> absolute blob path; only for the local blob store (tests and tools on one machine). */
  filePaths(record: ArtifactRecord): Record<string, string> {
    if (!(this.blobs instanceof FsBlobStore)) {
      throw new Error(`blob paths exist only for the local blob store, not ${this.blobs.location}`);
    }
    const paths: Record<string, string> = {};
    for (const file of record.files) paths[file.name] = this.blobs.pathOf(file.sha256);
    return paths;
  }

  /**
   * Gives a stored artifact its file names back as a local folder, for code that reads Hugging Face
   * folders by path (the model runtime): symbolic links to the blobs (fs), or the files downloaded
   * (s3; the folder then costs the artifact's size in local disk). Replaces what `dir` held.
   */
  async linkFolder(record: ArtifactRecord, dir: string): Promise<string> {
    await fs.rm(dir, { recursive: true, force: true });
    await fs.mkdir(dir, { recursive: true });
    for (const file of record.files) await this.blobs.materialize(file.sha256, path.join(dir, file.name));
    return dir;
  }

  /** One file of a stored artifact as a local path: the blob itself (fs) or a download into `dir` (s3). */
  async localFile(record: ArtifactRecord, name: string, dir: string): Promise<string> {
    const file = record.files.find((candidate) => candidate.name === name);
    if (!file) throw new Error(`${record.id} has no file ${name}`);
    if (this.blobs instanceof FsBlobStore) return this.blobs.pathOf(file.sha256);
    await fs.mkdir(dir, { recursive: true });
    const target = path.join(dir, `${record.id}-${name}`);
    await this.blobs.materialize(file.sha256, target);
    return target;
  }

  /** How many records use each digest (0 when none). */
  async referenceCount(sha256: string): Promise<number> {
    return Number((await this.redis.hget(this.refsKey, sha256)) ?? 0);
  }

  private async releaseBlobs(digests: string[]): Promise<void> {
    if (digests.length === 0) return;
    const orphans = (await this.redis.eval(RELEASE_SCRIPT, 1, this.refsKey, ...digests)) as string[];
    await this.removeOrphans(orphans);
  }

  /**
   * Deletes blobs whose count reached zero. The blob is moved aside first and the count read
   * again: an upload of the same bytes that counted itself in meanwhile gets its blob back.
   */
  private async removeOrphans(digests: string[]): Promise<void> {
    for (const sha of new Set(digests)) {
      const aside = await this.blobs.moveAside(sha);
      if (!aside) continue;
      if ((await this.referenceCount(sha)) > 0) await this.blobs.restore(aside, sha);
      else await this.blobs.dropAside(aside);
    }
  }
}

/** One upload in progress: files streamed to a staging directory, then committed or discarded. */
export class StagedUpload {
  readonly files = new Map<string, HashedFile>();
  private stagingDir: string | null = null;

  constructor(
    private readonly store: ArtifactStore,
    readonly kind: StoredArtifactKind,
    /** Tells the store this upload is over (committed or discarded). */
    private readonly settled: () => void = () => undefined,
  ) {}

  /** Streams one file to disk while hashing; UploadTooLargeError past `maxBytes`. */
  async addFile(name: string, source: Readable, maxBytes: number): Promise<HashedFile> {
    if (!isAllowedFileName(this.kind, name)) {
      source.resume();
      throw new ArtifactValidationError(
        'unexpected-file',
        `${name} is not part of a ${this.kind} (expected ${allowedFileNames(this.kind)})`,
        { file: name },
      );
    }
    if (this.files.has(name)) {
      source.resume();
      throw new ArtifactValidationError('duplicate-file', `${name} was sent twice`, { file: name });
    }
    this.stagingDir ??= await this.store.scratch.makeStagingDir();
    const file = await this.store.scratch.writeHashed(
      source,
      path.join(this.stagingDir, name),
      name,
      maxBytes,
    );
    this.files.set(name, file);
    return file;
  }

  filePaths(): Record<string, string> {
    return pathsOf(this.files);
  }

  inspect(): Promise<ArtifactSummary> {
    return this.store.inspect(this.kind, this.filePaths());
  }

  /** Writes the record; the staged files are removed whether or not it succeeds. */
  async commit(
    summary: ArtifactSummary,
    extras: { lineage: Lineage | null; baseModel?: string | null; publication?: Publication },
  ): Promise<ArtifactRecord> {
    try {
      return await this.store.commit(this.kind, this.files, summary, extras);
    } finally {
      await this.discard();
    }
  }

  /** Removes the staged files; every upload ends here, committed or not. */
  async discard(): Promise<void> {
    try {
      if (this.stagingDir) await fs.rm(this.stagingDir, { recursive: true, force: true });
    } finally {
      this.stagingDir = null;
      this.files.clear();
      this.settled();
    }
  }
}

function pathsOf(files: Map<string, HashedFile>): Record<string, string> {
  const paths: Record<string, string> = {};
  for (const [name, file] of files) paths[name] = file.path;
  return paths;
}

function encodeCursor(id: string): string {
  return Buffer.from(id, 'utf8').toString('base64url');
}

function decodeCursor(cursor: string): string {
  const id = Buffer.from(cursor, 'base64url').toString('utf8');
  if (!isArtifactId(id)) throw new InvalidCursorError();
  return id;
}
