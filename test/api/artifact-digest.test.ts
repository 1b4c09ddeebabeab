// GET /v1/{models,adapters,datasets}?digest=: the lookup a client makes before uploading, so content
// the service already holds is not sent again. The digest is recomputed here from sha256sum's format.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { goldenCaseDir } from '../helpers/golden.ts';
import { startTestRedis, type TestRedis } from '../helpers/redis.ts';
import { filePart, multipart, startApi, type TestApi } from './harness.ts';

const sha256 = (bytes: Buffer | string) => createHash('sha256').update(bytes).digest('hex');

describe('artifact lookup by content digest', () => {
  let server: TestRedis;
  let api: TestApi;
  before(async () => {
    server = await startTestRedis();
    api = await startApi(server.url);
  });
  after(async () => {
    await api.close();
    await server.stop();
  });

  const weights = readFileSync(path.join(goldenCaseDir('mergekit_ties'), 'm0.safetensors'));
  const config = Buffer.from('{"model_type": "llama"}');
  // `sha256sum config.json model.safetensors | sha256sum`, written out.
  const expectedDigest = sha256(`${sha256(config)}  config.json\n${sha256(weights)}  model.safetensors\n`);

  async function upload(): Promise<{ id: string; digest: string }> {
    const response = await api.app.inject({
      method: 'POST',
      url: '/v1/models',
      ...multipart([filePart('model.safetensors', weights), filePart('config.json', config)]),
    });
    assert.equal(response.statusCode, 201, response.body);
    return response.json();
  }

  const lookup = async (digest: string, kind = 'models') =>
    api.app.inject({ method: 'GET', url: `/v1/${kind}?digest=${digest}` });

  it('records carry the digest of their file manifest, and ?digest= finds the newest with it', async () => {
    const absent = await lookup(expectedDigest);
    assert.equal(absent.statusCode, 200);
    assert.deepEqual(absent.json(), { items: [], nextCursor: null });

    const first = await upload();
    assert.equal(first.digest, expectedDigest);
    const found = await lookup(expectedDigest);
    assert.deepEqual(
      found.json().items.map((item: { id: string }) => item.id),
      [first.id],
    );
    // The digest is per kind: no adapter or dataset has this content.
    assert.deepEqual((await lookup(expectedDigest, 'adapters')).json().items, []);

    const second = await upload();
    assert.equal((await lookup(expectedDigest)).json().items[0].id, second.id);
    // Deleting an older copy keeps the newest findable; deleting the newest forgets the digest.
    assert.equal((await api.app.inject({ method: 'DELETE', url: `/v1/models/${first.id}` })).statusCode, 204);
    assert.equal((await lookup(expectedDigest)).json().items[0].id, second.id);
    assert.equal(
      (await api.app.inject({ method: 'DELETE', url: `/v1/models/${second.id}` })).statusCode,
      204,
    );
    assert.deepEqual((await lookup(expectedDigest)).json().items, []);
  });

  it('a digest that is not 64 hex digits is a 400 problem', async () => {
    const response = await lookup('NOTHEX');
    assert.equal(response.statusCode, 400);
    assert.equal(response.json().type, 'https://lorafuse.dev/problems/invalid-request');
  });
});
