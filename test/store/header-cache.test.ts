// The API's cache of safetensors headers (src/store/header-cache.ts): once a blob's header has been read, the
// reader gets it from memory without opening the blob (proved with the file moved away), tensor data still
// comes from the blob, the cache stays within its byte bound (least recently used go first), and headers
// larger than an entry may be are read from the blob every time.
import assert from 'node:assert/strict';
import { readFile, rename, stat } from 'node:fs/promises';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import { HeaderCache } from '../../src/store/index.ts';
import { SafetensorsFile } from '../../src/tensors/index.ts';
import { tempDir } from '../helpers/redis.ts';
import { MODULE, writeModelFolder } from './fixtures.ts';

describe('HeaderCache', () => {
  const work = tempDir('lorafuse-header-cache');
  after(() => work.remove());

  async function blob(name: string, offset: number): Promise<{ file: string; size: number }> {
    const dir = await writeModelFolder(path.join(work.dir, name), { offset, config: false });
    const file = path.join(dir, 'model.safetensors');
    return { file, size: (await stat(file)).size };
  }

  async function tensorNames(source: Parameters<typeof SafetensorsFile.open>[0]): Promise<string[]> {
    const reader = await SafetensorsFile.open(source);
    try {
      return reader.names();
    } finally {
      await reader.close();
    }
  }

  it('serves a header it has read from memory, and tensor data from the blob', async () => {
    const cache = new HeaderCache();
    const { file, size } = await blob('a', 0);
    const direct = await SafetensorsFile.open(file);
    const expected = { names: direct.names(), q: await direct.readFloat32(`${MODULE}.weight`) };
    await direct.close();

    assert.deepEqual(await tensorNames(cache.source('sha-a', size, file)), expected.names);
    assert.equal(cache.size, 1);
    const moved = `${file}.away`;
    await rename(file, moved);
    const reader = await SafetensorsFile.open(cache.source('sha-a', size, file));
    assert.deepEqual(reader.names(), expected.names, 'the header came from memory: the file is not there');
    await assert.rejects(reader.readFloat32(`${MODULE}.weight`), /ENOENT/, 'data is read from the blob');
    await reader.close();
    await rename(moved, file);
    const again = await SafetensorsFile.open(cache.source('sha-a', size, file));
    assert.deepEqual(await again.readFloat32(`${MODULE}.weight`), expected.q);
    await again.close();
  });

  it('keeps within its byte bound, dropping the least recently used header first', async () => {
    const a = await blob('b1', 1);
    const b = await blob('b2', 2);
    const c = await blob('b3', 3);
    // Room for two headers of this size (all three are the same size), not three.
    const header = 8 + Number((await readFile(a.file)).readBigUInt64LE(0));
    const cache = new HeaderCache({ maxBytes: header * 2 + 4 });
    await tensorNames(cache.source('a', a.size, a.file));
    await tensorNames(cache.source('b', b.size, b.file));
    assert.ok(cache.get('a'), 'a is now the most recently used');
    await tensorNames(cache.source('c', c.size, c.file));
    assert.equal(cache.size, 2);
    assert.ok(cache.get('a') && cache.get('c'));
    assert.equal(cache.get('b'), undefined, 'b went first');
  });

  it('never keeps a header larger than an entry may be', async () => {
    const { file, size } = await blob('big', 4);
    const cache = new HeaderCache({ maxEntryBytes: 16 });
    assert.equal((await tensorNames(cache.source('big', size, file))).length, 3);
    assert.equal(cache.size, 0);
  });
});
