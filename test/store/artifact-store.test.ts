import assert from 'node:assert/strict';
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
  UploadTooLargeError,
} from '../../src/store/index.ts';
import { Checkpoint } from '../../src/tensors/index.ts';
import { startTestRedis, tempDir, type TestRedis, uniquePrefix } from '../helpers/redis.ts';
import {
  diskState,
  MODULE,
  writeAdapterFolder,
  writeModelFolder,
  writeShardedModelFolder,
} from './fixtures.ts';

const lineage = {
  parents: [{ kind: 'model', id: 'mdl_0' }],
  jobId: 'job_1',
  lorafuseVersion: LORAFUSE_VERSION,
};

describe('ArtifactStore', () => {
  let server: TestRedis;
  let redis: Redis;
  let store: ArtifactStore;
  let work: ReturnType<typeof tempDir>;
  let dataDir: string;

  before(async () => {
    server = await startTestRedis();
    redis = new Redis(server.url);
  });
  after(async () => {
    await redis.quit();
    await server.stop();
  });
  beforeEach(async () => {
    work = tempDir('lorafuse-store');
    dataDir = path.join(work.dir, 'data');
    store = new ArtifactStore({ redis, dataDir, prefix: uniquePrefix('store') });
    await store.init();
  });
  afterEach(() => work.remove());

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
    const paths = store.filePaths(record);
    const checkpoint = await Checkpoint.openFiles({ 'model.safetensors': paths['model.safetensors'] });
    assert.deepEqual(checkpoint.info(`${MODULE}.weight`).shape, [4, 4]);
    await checkpoint.close();
    const bytes = await fs.readFile(path.join(dir, 'model.safetensors'));
    assert.deepEqual(await fs.readFile(paths['model.safetensors']), bytes);
    const sha = record.files.find((file) => file.name === 'model.safetensors')!.sha256;
    assert.equal(
      paths['model.safetensors'],
      path.join(dataDir, 'blobs', 'sha256', sha.slice(0, 2), sha.slice(2)),
    );
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
    await fs.access(store.filePaths(second)['model.safetensors']);

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
      for (const blob of Object.values(store.filePaths(next))) await fs.access(blob);
      for (const file of next.files) assert.equal(await store.referenceCount(file.sha256), 1);
      previous = next;
    }
    assert.equal(await store.count('model'), 1);
    assert.deepEqual((await diskState(dataDir)).tmp, []);
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
