import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';
import { Readable } from 'node:stream';
import { after, afterEach, before, beforeEach, describe, it } from 'node:test';
import { Redis } from 'ioredis';
import {
  ArtifactStore,
  ArtifactValidationError,
  InvalidCursorError,
  LORAFUSE_VERSION,
  S3BlobStore,
  UploadTooLargeError,
} from '../../src/store/index.ts';
import {
  Checkpoint,
  type FileRef,
  openFileRange,
  type RangeSource,
  readWhole,
  writeSafetensors,
} from '../../src/tensors/index.ts';
import { startTestRedis, tempDir, type TestRedis, uniquePrefix } from '../helpers/redis.ts';
import { startTestS3, type TestS3 } from '../helpers/s3.ts';
import { MODULE, writeAdapterFolder, writeModelFolder, writeShardedModelFolder } from './fixtures.ts';

/** A range source that counts the bytes it serves (a path is opened as a local file first). */
async function countingRef(ref: FileRef): Promise<RangeSource & { bytesRead(): number }> {
  const inner = typeof ref === 'string' ? await openFileRange(ref) : ref;
  let served = 0;
  return {
    name: inner.name,
    size: inner.size,
    async read(target, offset, length, position) {
      const read = await inner.read(target, offset, length, position);
      served += read;
      return read;
    },
    close: () => inner.close(),
    bytesRead: () => served,
  };
}

async function readAll(stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

const lineage = {
  parents: [{ kind: 'model', id: 'mdl_0' }],
  jobId: 'job_1',
  lorafuseVersion: LORAFUSE_VERSION,
};

// One suite, run against both blob stores: the data directory and a real S3-compatible server.
for (const backend of ['fs', 's3'] as const) {
  describe(`ArtifactStore (${backend} blobs)`, () => {
    let server: TestRedis;
    let s3: TestS3 | undefined;
    let redis: Redis;
    let store: ArtifactStore;
    let work: ReturnType<typeof tempDir>;
    let dataDir: string;

    before(async () => {
      server = await startTestRedis();
      redis = new Redis(server.url);
      if (backend === 's3') s3 = await startTestS3();
    });
    after(async () => {
      await redis.quit();
      await server.stop();
      await s3?.stop();
    });
    beforeEach(async () => {
      work = tempDir('lorafuse-store');
      dataDir = path.join(work.dir, 'data');
      const blobs = s3?.blobStore();
      store = new ArtifactStore({ redis, dataDir, prefix: uniquePrefix('store'), blobs });
      await store.init();
    });
    afterEach(async () => {
      await store.close();
      work.remove();
    });

    /** Blob digests held, and leftovers: local temporary entries plus, on S3, any key that is not a blob. */
    async function diskState(_dataDir: string): Promise<{ blobs: string[]; tmp: string[] }> {
      const tmp: string[] = await fs.readdir(store.scratch.tmpDir).catch(() => []);
      if (store.blobs instanceof S3BlobStore) {
        const blobRoot = `${store.blobs.options.prefix}blobs/sha256/`;
        tmp.push(...(await store.blobs.listKeys()).filter((key) => !key.startsWith(blobRoot)));
      }
      return { blobs: await store.blobs.list(), tmp };
    }

    async function blobBytes(record: { files: Array<{ name: string }> }, name: string): Promise<Uint8Array> {
      return readWhole(store.fileRefs(record as Parameters<ArtifactStore['fileRefs']>[0])[name]);
    }

    async function stageFolder(kind: 'model' | 'adapter', dir: string) {
      const upload = store.stage(kind);
      for (const name of await fs.readdir(dir)) {
        await upload.addFile(name, (await fs.open(path.join(dir, name))).createReadStream(), 1 << 20);
      }
      return upload;
    }

    it('ingests a model folder: record, lineage, blobs addressed by sha256', async () => {
      const dir = await writeModelFolder(path.join(work.dir, 'result'));
      const record = await store.ingestDirectory('model', dir, lineage);
      assert.match(record.id, /^mdl_[0-9a-z]{26}$/);
      assert.equal(record.kind, 'model');
      assert.deepEqual(
        record.files.map((file) => file.name),
        ['config.json', 'model.safetensors'],
      );
      assert.equal(record.tensorCount, 3);
      assert.equal(record.parameterCount, 16 + 32 + 4);
      assert.deepEqual(record.dtypes, ['F32']);
      assert.deepEqual(record.lineage, lineage);
      assert.deepEqual(await store.get(record.id), record);
      const refs = store.fileRefs(record);
      const checkpoint = await Checkpoint.openFiles({ 'model.safetensors': refs['model.safetensors'] });
      assert.deepEqual(checkpoint.info(`${MODULE}.weight`).shape, [4, 4]);
      await checkpoint.close();
      const bytes = await fs.readFile(path.join(dir, 'model.safetensors'));
      assert.deepEqual(Buffer.from(await blobBytes(record, 'model.safetensors')), bytes);
      const sha = record.files.find((file) => file.name === 'model.safetensors')!.sha256;
      assert.deepEqual(await store.blobs.list(), record.files.map((file) => file.sha256).sort());
      if (backend === 'fs') {
        assert.equal(
          store.filePaths(record)['model.safetensors'],
          path.join(dataDir, 'blobs', 'sha256', sha.slice(0, 2), sha.slice(2)),
        );
      }
      assert.deepEqual((await diskState(dataDir)).tmp, []);
    });

    it('ingests a sharded model with its index', async () => {
      const dir = path.join(work.dir, 'sharded');
      const written = await writeShardedModelFolder(dir);
      assert.ok(written.length >= 3, `expected several shards, got ${written}`);
      const record = await store.ingestDirectory('model', dir, lineage);
      assert.equal(record.tensorCount, 3);
      assert.ok(record.files.some((file) => file.name === 'model.safetensors.index.json'));
    });

    it('publishes a sharded model from held shard blobs: counted once per slot, released by the holder', async () => {
      const dir = path.join(work.dir, 'shards');
      const written = await writeShardedModelFolder(dir);
      const shards = written.filter((name) => name.endsWith('.safetensors'));
      const before = await diskState(dataDir);
      // Each shard is published by "another machine" and held; the second hold of the same slot (a retried shard)
      // counts once.
      const held = [];
      for (const name of shards) {
        const file = await store.scratch.hashFile(path.join(dir, name));
        await store.holdBlob('job_parent', name, file);
        await store.holdBlob('job_parent', name, file);
        held.push({ name, size: file.size, sha256: file.sha256 });
        assert.equal(await store.referenceCount(file.sha256), 1);
      }
      assert.deepEqual(Object.keys(await store.holds('job_parent')).sort(), [...shards].sort());
      // The parent's folder holds only the small files; the shards are validated where they are stored.
      const small = path.join(work.dir, 'small');
      await fs.mkdir(small);
      await fs.copyFile(
        path.join(dir, 'model.safetensors.index.json'),
        path.join(small, 'model.safetensors.index.json'),
      );
      const record = await store.ingestDirectory('model', small, lineage, { stored: held });
      assert.equal(record.tensorCount, 3);
      const direct = await store.ingestDirectory('model', dir, lineage);
      assert.deepEqual(record.files, direct.files, 'the same files as the folder ingested whole');
      await store.delete(direct.id);
      for (const file of held) assert.equal(await store.referenceCount(file.sha256), 2);
      await store.releaseHolds('job_parent');
      for (const file of held) assert.equal(await store.referenceCount(file.sha256), 1);
      assert.deepEqual(await store.holds('job_parent'), {});
      // A missing shard blob is refused before any record exists.
      await assert.rejects(
        store.ingestDirectory('model', small, lineage, {
          stored: [...held.slice(1), { ...held[0], sha256: 'f'.repeat(64) }],
        }),
        /is missing/,
      );
      await store.delete(record.id);
      assert.deepEqual((await diskState(dataDir)).blobs, before.blobs);

      // A holder that gives up (a failed merge) leaves no blob behind.
      for (const name of shards)
        await store.holdBlob('job_failed', name, await store.scratch.hashFile(path.join(dir, name)));
      assert.equal((await diskState(dataDir)).blobs.length, before.blobs.length + shards.length);
      await store.releaseHolds('job_failed');
      assert.deepEqual((await diskState(dataDir)).blobs, before.blobs);
    });

    it('ingests an adapter: rank, targets and config', async () => {
      const dir = await writeAdapterFolder(path.join(work.dir, 'adapter'));
      const record = await store.ingestDirectory('adapter', dir, lineage);
      assert.match(record.id, /^adp_/);
      assert.equal(record.rank, 2);
      assert.deepEqual(record.targets, [MODULE]);
      assert.equal(record.baseModel, null);
      assert.equal(record.config?.r, 2);
      assert.equal(record.tensorCount, 2);
    });

    it('refuses a folder holding a file that is not part of the artifact', async () => {
      const dir = await writeModelFolder(path.join(work.dir, 'stray'));
      await fs.writeFile(path.join(dir, 'notes.txt'), 'hello');
      await assert.rejects(store.ingestDirectory('model', dir, lineage), {
        name: 'ArtifactValidationError',
        code: 'unexpected-file',
      });
      assert.equal(await store.count('model'), 0);
      assert.deepEqual(await diskState(dataDir), { blobs: [], tmp: [] });
    });

    it('stores identical bytes once and removes a blob only with its last user', async () => {
      const dir = await writeModelFolder(path.join(work.dir, 'same'));
      const first = await (await stageFolder('model', dir)).commit(
        await store.inspect('model', {
          'model.safetensors': path.join(dir, 'model.safetensors'),
          'config.json': path.join(dir, 'config.json'),
        }),
        { lineage: null },
      );
      const second = await store.ingestDirectory('model', dir, lineage);
      assert.notEqual(first.id, second.id);
      assert.deepEqual(
        first.files.map((file) => file.sha256),
        second.files.map((file) => file.sha256),
      );
      assert.equal((await diskState(dataDir)).blobs.length, 2);
      assert.equal(await store.referenceCount(first.files[0].sha256), 2);

      assert.equal(await store.delete(first.id), true);
      assert.equal(await store.get(first.id), null);
      assert.equal((await diskState(dataDir)).blobs.length, 2, 'the second record still uses both blobs');
      for (const file of second.files) assert.ok(await store.blobs.exists(file.sha256));

      assert.equal(await store.delete(second.id), true);
      assert.deepEqual(await diskState(dataDir), { blobs: [], tmp: [] });
      assert.equal(await store.referenceCount(first.files[0].sha256), 0);
      assert.equal(await store.delete(second.id), false);
    });

    it('rejects a corrupt header and leaves nothing behind', async () => {
      const dir = await writeModelFolder(path.join(work.dir, 'corrupt'));
      const file = path.join(dir, 'model.safetensors');
      const bytes = await fs.readFile(file);
      bytes.write('[[[[', 8);
      await fs.writeFile(file, bytes);
      const upload = await stageFolder('model', dir);
      await assert.rejects(upload.inspect(), (error: unknown) => {
        assert.ok(error instanceof ArtifactValidationError);
        assert.equal(error.code, 'invalid-safetensors');
        assert.equal(error.file, 'model.safetensors');
        assert.doesNotMatch(error.message, new RegExp(dataDir));
        return true;
      });
      await upload.discard();
      assert.equal(await store.count('model'), 0);
      assert.deepEqual(await diskState(dataDir), { blobs: [], tmp: [] });
    });

    it('rejects a truncated file', async () => {
      const dir = await writeModelFolder(path.join(work.dir, 'truncated'));
      const file = path.join(dir, 'model.safetensors');
      await fs.truncate(file, (await fs.stat(file)).size - 3);
      await assert.rejects(store.ingestDirectory('model', dir, lineage), { code: 'invalid-safetensors' });
      assert.deepEqual(await diskState(dataDir), { blobs: [], tmp: [] });
    });

    it('stops a file past its size limit and removes the partial file', async () => {
      const upload = store.stage('model');
      await assert.rejects(
        upload.addFile('model.safetensors', Readable.from([Buffer.alloc(600), Buffer.alloc(600)]), 1000),
        UploadTooLargeError,
      );
      await upload.discard();
      assert.deepEqual(await diskState(dataDir), { blobs: [], tmp: [] });
    });

    it('refuses unknown and repeated file names', async () => {
      const upload = store.stage('adapter');
      await assert.rejects(upload.addFile('model.safetensors', Readable.from([Buffer.from('x')]), 10), {
        code: 'unexpected-file',
      });
      await upload.addFile('adapter_config.json', Readable.from([Buffer.from('{}')]), 10);
      await assert.rejects(upload.addFile('adapter_config.json', Readable.from([Buffer.from('{}')]), 10), {
        code: 'duplicate-file',
      });
      await upload.discard();
      assert.deepEqual((await diskState(dataDir)).tmp, []);
    });

    it('a failed commit releases its blobs but never one another record uses', async () => {
      const dir = await writeModelFolder(path.join(work.dir, 'kept'));
      const kept = await store.ingestDirectory('model', dir, lineage);
      const configSha = kept.files.find((file) => file.name === 'config.json')!.sha256;
      // A second artifact sharing config.json whose weights vanish before they are placed.
      const other = await writeModelFolder(path.join(work.dir, 'other'), { offset: 7 });
      const upload = await stageFolder('model', other);
      const summary = await upload.inspect();
      const weights = upload.files.get('model.safetensors')!;
      await fs.rm(weights.path);
      await assert.rejects(upload.commit(summary, { lineage: null }), { code: 'ENOENT' });
      assert.equal(await store.count('model'), 1);
      assert.equal(await store.referenceCount(configSha), 1);
      assert.equal(await store.referenceCount(weights.sha256), 0);
      const state = await diskState(dataDir);
      assert.deepEqual(state.blobs, kept.files.map((file) => file.sha256).sort());
      assert.deepEqual(state.tmp, []);
    });

    it('an upload racing the deletion of the last record using its bytes keeps its blobs', async () => {
      const dir = await writeModelFolder(path.join(work.dir, 'race'));
      let previous = await store.ingestDirectory('model', dir, lineage);
      for (let round = 0; round < 25; round++) {
        // Staged and inspected first, so that its commit and the deletion run side by side.
        const upload = await stageFolder('model', dir);
        const summary = await upload.inspect();
        const [, next] = await Promise.all([
          store.delete(previous.id),
          upload.commit(summary, { lineage: null }),
        ]);
        for (const file of next.files) assert.ok(await store.blobs.exists(file.sha256), file.name);
        for (const file of next.files) assert.equal(await store.referenceCount(file.sha256), 1);
        previous = next;
      }
      assert.equal(await store.count('model'), 1);
      assert.deepEqual((await diskState(dataDir)).tmp, []);
    });

    it('reads a tensor with ranged reads: the header and that tensor, never the whole file', async () => {
      const dir = path.join(work.dir, 'wide');
      await fs.mkdir(dir);
      const big = Float32Array.from({ length: 256 * 1024 }, (_, i) => Math.sin(i));
      const small = Float32Array.from({ length: 64 }, (_, i) => i / 7);
      await writeSafetensors(path.join(dir, 'model.safetensors'), [
        { name: 'big.weight', dtype: 'F32', shape: [512, 512], data: big },
        { name: 'small.weight', dtype: 'F32', shape: [8, 8], data: small },
      ]);
      const record = await store.ingestDirectory('model', dir, lineage);
      const file = record.files.find((entry) => entry.name === 'model.safetensors')!;
      const counted = await countingRef(store.fileRefs(record)['model.safetensors']);
      const checkpoint = await Checkpoint.openFiles({ 'model.safetensors': counted });
      try {
        assert.deepEqual(await checkpoint.readFloat32('small.weight'), small);
      } finally {
        await checkpoint.close();
      }
      // S3: what the server sent for the whole read, header included
      if (store.blobs instanceof S3BlobStore) assert.ok(store.blobs.stats.bytes < 64 * 1024);
      const header = Number(Buffer.from(await blobBytes(record, 'model.safetensors')).readBigUInt64LE(0));
      // 8 length bytes + the header + 64 floats, and nothing of the 1 MiB tensor before them
      assert.equal(counted.bytesRead(), 8 + header + 64 * 4);
      assert.ok(file.size > 1024 * 1024);
    });

    it('stores a blob larger than a multipart part and serves byte ranges of it', async () => {
      const dir = path.join(work.dir, 'large');
      await fs.mkdir(dir);
      // 12 MiB: three parts of 5 MiB on S3
      const data = Float32Array.from({ length: 3 * 1024 * 1024 }, (_, i) => (i % 1000) - 0.5);
      await writeSafetensors(path.join(dir, 'model.safetensors'), [
        { name: 'w', dtype: 'F32', shape: [3 * 1024, 1024], data },
      ]);
      const record = await store.ingestDirectory('model', dir, lineage);
      const original = await fs.readFile(path.join(dir, 'model.safetensors'));
      const file = record.files[0];
      assert.equal(file.size, original.length);
      const whole = await readAll(await store.blobs.readStream(file.sha256));
      assert.equal(createHash('sha256').update(whole).digest('hex'), file.sha256);
      const start = 5 * 1024 * 1024 - 3;
      const range = await readAll(await store.blobs.readStream(file.sha256, { start, end: start + 9 }));
      assert.deepEqual(range, original.subarray(start, start + 10));
      const checkpoint = await Checkpoint.openFiles(store.fileRefs(record));
      try {
        assert.deepEqual(await checkpoint.readFloat32('w'), data);
      } finally {
        await checkpoint.close();
      }
    });

    it('gives a stored artifact back as a local folder with its file names', async () => {
      const dir = await writeModelFolder(path.join(work.dir, 'folder'));
      const record = await store.ingestDirectory('model', dir, lineage);
      const local = await store.linkFolder(record, path.join(work.dir, 'linked'));
      assert.deepEqual((await fs.readdir(local)).sort(), ['config.json', 'model.safetensors']);
      for (const name of ['config.json', 'model.safetensors']) {
        assert.deepEqual(await fs.readFile(path.join(local, name)), await fs.readFile(path.join(dir, name)));
      }
      const config = await store.localFile(record, 'config.json', path.join(work.dir, 'single'));
      assert.deepEqual(await fs.readFile(config), await fs.readFile(path.join(dir, 'config.json')));
    });

    it('pages newest first with an opaque cursor', async () => {
      const dir = await writeModelFolder(path.join(work.dir, 'many'));
      const ids: string[] = [];
      for (let i = 0; i < 5; i++) ids.push((await store.ingestDirectory('model', dir, lineage)).id);
      const seen: string[] = [];
      let cursor: string | undefined;
      let pages = 0;
      do {
        const page = await store.list('model', { limit: 2, cursor });
        seen.push(...page.items.map((item) => item.id));
        cursor = page.nextCursor ?? undefined;
        pages++;
      } while (cursor);
      assert.equal(pages, 3);
      assert.deepEqual(seen, [...ids].reverse());
      assert.deepEqual((await store.list('adapter', { limit: 10 })).items, []);
      await assert.rejects(store.list('model', { limit: 2, cursor: 'bm9wZQ' }), InvalidCursorError);
      const adapterCursor = Buffer.from('adp_01jabcdefghjkmnpqrstvwxyz0').toString('base64url');
      await assert.rejects(store.list('model', { limit: 2, cursor: adapterCursor }), InvalidCursorError);
    });

    it('sweeps temporary files a crashed process left behind', async () => {
      const stale = path.join(dataDir, 'tmp', 'upload-stale');
      await fs.mkdir(stale);
      const old = new Date(Date.now() - 48 * 3600 * 1000);
      await fs.utimes(stale, old, old);
      const fresh = path.join(dataDir, 'tmp', 'upload-fresh');
      await fs.mkdir(fresh);
      await store.init();
      assert.deepEqual((await diskState(dataDir)).tmp, ['upload-fresh']);
    });
  });
}
