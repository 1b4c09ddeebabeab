import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import fs from 'node:fs/promises';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { after, afterEach, before, beforeEach, describe, it } from 'node:test';
import { startTestRedis, type TestRedis } from '../helpers/redis.ts';
import { writeModelFolder, writeShardedModelFolder } from '../store/fixtures.ts';
import { filePart, multipart, type Part, startApi, type TestApi } from './harness.ts';

const PROBLEM = 'application/problem+json; charset=utf-8';

/** A safetensors file from a header written by hand (for hostile headers). */
function rawSafetensors(header: string, data: Buffer): Buffer {
  const json = Buffer.from(header);
  const length = Buffer.alloc(8);
  length.writeBigUInt64LE(BigInt(json.length));
  return Buffer.concat([length, json, data]);
}

describe('models API', () => {
  let server: TestRedis;
  let api: TestApi;
  let model: { weights: Buffer; config: Buffer };

  before(async () => {
    server = await startTestRedis();
  });
  after(async () => {
    await server.stop();
  });
  beforeEach(async () => {
    api = await startApi(server.url, { maxFileBytes: 4096, maxJsonBytes: 1024 });
    const dir = await writeModelFolder(path.join(api.workDir, 'model'));
    model = {
      weights: await fs.readFile(path.join(dir, 'model.safetensors')),
      config: await fs.readFile(path.join(dir, 'config.json')),
    };
  });
  afterEach(async () => {
    await api.close();
  });

  async function upload(parts: Part[]) {
    const body = multipart(parts);
    return api.app.inject({ method: 'POST', url: '/v1/models', ...body });
  }

  async function uploadModel() {
    const response = await upload([
      filePart('model.safetensors', model.weights),
      filePart('config.json', model.config),
    ]);
    assert.equal(response.statusCode, 201, response.body);
    return response.json();
  }

  it('stores an upload and answers 201 with the record and its Location', async () => {
    const response = await upload([
      filePart('model.safetensors', model.weights),
      filePart('config.json', model.config),
    ]);
    assert.equal(response.statusCode, 201, response.body);
    const record = response.json();
    assert.equal(response.headers.location, `/v1/models/${record.id}`);
    assert.match(record.id, /^mdl_/);
    assert.equal(record.kind, 'model');
    assert.equal(record.tensorCount, 3);
    assert.equal(record.parameterCount, 52);
    assert.deepEqual(record.dtypes, ['F32']);
    assert.equal(record.lineage, null);
    const weights = record.files.find((file: { name: string }) => file.name === 'model.safetensors');
    assert.equal(weights.size, model.weights.length);
    assert.equal(weights.sha256, createHash('sha256').update(model.weights).digest('hex'));

    const fetched = await api.app.inject({ method: 'GET', url: `/v1/models/${record.id}` });
    assert.equal(fetched.statusCode, 200);
    assert.deepEqual(fetched.json(), record);
    // The response schema must not drop anything the store records.
    assert.deepEqual(record, await api.store.get(record.id));
    assert.deepEqual((await api.snapshot()).tmp, []);
  });

  it('accepts shards with their index', async () => {
    const dir = path.join(api.workDir, 'sharded');
    const names = await writeShardedModelFolder(dir);
    const parts = await Promise.all(
      names.map(async (name) => filePart(name, await fs.readFile(path.join(dir, name)))),
    );
    const response = await upload(parts);
    assert.equal(response.statusCode, 201, response.body);
    assert.equal(response.json().files.length, names.length);
    assert.equal(response.json().tensorCount, 3);
  });

  it('stores identical bytes once', async () => {
    const first = await uploadModel();
    const second = await uploadModel();
    assert.notEqual(first.id, second.id);
    const state = await api.snapshot();
    assert.equal(state.models, 2);
    assert.equal(state.blobs.length, 2);
  });

  describe('rejects a bad upload with a problem and stores nothing', () => {
    const cases: Array<{
      name: string;
      status: number;
      type: string;
      parts: () => Part[];
      check?: (problem: Record<string, unknown>) => void;
    }> = [
      {
        name: 'corrupt header',
        status: 422,
        type: 'invalid-safetensors',
        parts: () => [filePart('model.safetensors', rawSafetensors('{"a": [1,', Buffer.alloc(0)))],
        check: (problem) => assert.equal(problem.file, 'model.safetensors'),
      },
      {
        name: 'duplicate tensor names',
        status: 422,
        type: 'invalid-safetensors',
        parts: () => [
          filePart(
            'model.safetensors',
            rawSafetensors(
              '{"w":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"w":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}',
              Buffer.alloc(4),
            ),
          ),
        ],
      },
      {
        name: 'truncated file',
        status: 422,
        type: 'invalid-safetensors',
        parts: () => [filePart('model.safetensors', model.weights.subarray(0, model.weights.length - 5))],
      },
      {
        name: 'file over the configured limit',
        status: 413,
        type: 'payload-too-large',
        parts: () => [filePart('model.safetensors', Buffer.concat([model.weights, Buffer.alloc(4096)]))],
        check: (problem) => assert.equal(problem.file, 'model.safetensors'),
      },
      {
        name: 'JSON file over its limit',
        status: 413,
        type: 'payload-too-large',
        parts: () => [
          filePart('model.safetensors', model.weights),
          filePart('config.json', `{"x":"${'a'.repeat(2000)}"}`),
        ],
      },
      {
        name: 'wrong part name',
        status: 400,
        type: 'unexpected-file',
        parts: () => [filePart('model.safetensors', model.weights), filePart('weights.bin', 'xyz')],
        check: (problem) => assert.equal(problem.file, 'weights.bin'),
      },
      {
        name: 'the same file twice',
        status: 400,
        type: 'duplicate-file',
        parts: () => [
          filePart('model.safetensors', model.weights),
          filePart('model.safetensors', model.weights),
        ],
      },
      {
        name: 'an unknown text field',
        status: 400,
        type: 'invalid-upload',
        parts: () => [filePart('model.safetensors', model.weights), { name: 'base_model', data: 'mdl_x' }],
      },
      {
        name: 'bad JSON in config.json',
        status: 422,
        type: 'invalid-json',
        parts: () => [
          filePart('model.safetensors', model.weights),
          filePart('config.json', '{"hidden_size": '),
        ],
        check: (problem) => assert.equal(problem.file, 'config.json'),
      },
      {
        name: 'no weights',
        status: 422,
        type: 'missing-file',
        parts: () => [filePart('config.json', model.config)],
      },
      {
        name: 'an index naming a missing shard',
        status: 422,
        type: 'missing-file',
        parts: () => [
          filePart(
            'model.safetensors.index.json',
            JSON.stringify({ weight_map: { w: 'model-00001-of-00002.safetensors' } }),
          ),
        ],
      },
      {
        name: 'weights and an index together',
        status: 422,
        type: 'ambiguous-checkpoint',
        parts: () => [
          filePart('model.safetensors', model.weights),
          filePart('model.safetensors.index.json', JSON.stringify({ weight_map: {} })),
        ],
      },
    ];

    for (const testCase of cases) {
      it(testCase.name, async () => {
        await uploadModel();
        const before = await api.snapshot();
        const response = await upload(testCase.parts());
        assert.equal(response.statusCode, testCase.status, response.body);
        assert.equal(response.headers['content-type'], PROBLEM);
        const problem = response.json();
        assert.equal(problem.type, `https://lorafuse.dev/problems/${testCase.type}`);
        assert.equal(problem.status, testCase.status);
        assert.equal(typeof problem.title, 'string');
        assert.equal(typeof problem.detail, 'string');
        assert.equal(problem.instance, '/v1/models');
        assert.doesNotMatch(problem.detail, new RegExp(api.dataDir));
        testCase.check?.(problem);
        assert.deepEqual(await api.snapshot(), before);
      });
    }

    it('a body cut off in the middle of a file', async () => {
      const before = await api.snapshot();
      const body = multipart([
        filePart('config.json', model.config),
        filePart('model.safetensors', model.weights),
      ]);
      const response = await api.app.inject({
        method: 'POST',
        url: '/v1/models',
        headers: body.headers,
        payload: body.payload.subarray(0, body.payload.length - 60),
      });
      assert.equal(response.statusCode, 400, response.body);
      assert.equal(response.json().type, 'https://lorafuse.dev/problems/invalid-upload');
      assert.deepEqual(await api.snapshot(), before);
    });

    it('a connection dropped mid-file, and a file over the limit, over a real socket', async () => {
      await api.app.listen({ port: 0, host: '127.0.0.1' });
      const { port } = api.app.server.address() as AddressInfo;
      const body = multipart([
        filePart('model.safetensors', Buffer.concat([model.weights, Buffer.alloc(3000)])),
      ]);
      // The client sends half the body and hangs up.
      await new Promise<void>((resolve) => {
        const request = http.request({ port, method: 'POST', path: '/v1/models', headers: body.headers });
        request.on('error', () => resolve());
        request.write(body.payload.subarray(0, 1500), () => setTimeout(() => request.destroy(), 50));
        request.on('close', () => resolve());
      });
      // The server notices the abort asynchronously.
      for (let i = 0; i < 50 && (await api.snapshot()).tmp.length > 0; i++)
        await new Promise((r) => setTimeout(r, 20));
      assert.deepEqual(await api.snapshot(), { models: 0, adapters: 0, datasets: 0, blobs: [], tmp: [] });

      // A file larger than the limit is refused while it streams, not after the whole body is read.
      const big = multipart([filePart('model.safetensors', Buffer.alloc(64 * 1024))]);
      const status = await new Promise<number>((resolve, reject) => {
        const request = http.request(
          { port, method: 'POST', path: '/v1/models', headers: big.headers },
          (response) => {
            response.resume();
            resolve(response.statusCode ?? 0);
          },
        );
        request.on('error', reject);
        request.end(big.payload);
      });
      assert.equal(status, 413);
      assert.deepEqual(await api.snapshot(), { models: 0, adapters: 0, datasets: 0, blobs: [], tmp: [] });
    });

    it('a body that is not multipart', async () => {
      for (const [type, payload] of [
        ['application/json', '{}'],
        ['application/octet-stream', 'abc'],
      ]) {
        const response = await api.app.inject({
          method: 'POST',
          url: '/v1/models',
          headers: { 'content-type': type },
          payload,
        });
        assert.equal(response.statusCode, 415, `${type}: ${response.body}`);
        assert.equal(response.json().type, 'https://lorafuse.dev/problems/unsupported-media-type');
      }
      assert.deepEqual(await api.snapshot(), { models: 0, adapters: 0, datasets: 0, blobs: [], tmp: [] });
    });
  });

  describe('downloads', () => {
    it('streams a file with Content-Length, ETag and Accept-Ranges', async () => {
      const record = await uploadModel();
      const sha = record.files.find((file: { name: string }) => file.name === 'model.safetensors').sha256;
      const url = `/v1/models/${record.id}/files/model.safetensors`;
      const response = await api.app.inject({ method: 'GET', url });
      assert.equal(response.statusCode, 200);
      assert.deepEqual(response.rawPayload, model.weights);
      assert.equal(response.headers['content-length'], String(model.weights.length));
      assert.equal(response.headers.etag, `"${sha}"`);
      assert.equal(response.headers['accept-ranges'], 'bytes');
      assert.equal(response.headers['content-type'], 'application/octet-stream');

      const config = await api.app.inject({
        method: 'GET',
        url: `/v1/models/${record.id}/files/config.json`,
      });
      assert.deepEqual(config.rawPayload, model.config);
      assert.match(String(config.headers['content-type']), /^application\/json/);
    });

    it('answers If-None-Match with 304', async () => {
      const record = await uploadModel();
      const url = `/v1/models/${record.id}/files/model.safetensors`;
      const etag = String((await api.app.inject({ method: 'GET', url })).headers.etag);
      const cached = await api.app.inject({ method: 'GET', url, headers: { 'if-none-match': etag } });
      assert.equal(cached.statusCode, 304);
      assert.equal(cached.rawPayload.length, 0);
      const stale = await api.app.inject({ method: 'GET', url, headers: { 'if-none-match': '"other"' } });
      assert.equal(stale.statusCode, 200);
    });

    it('serves single ranges with 206 and refuses unsatisfiable ones with 416', async () => {
      const record = await uploadModel();
      const url = `/v1/models/${record.id}/files/model.safetensors`;
      const size = model.weights.length;
      const first = await api.app.inject({ method: 'GET', url, headers: { range: 'bytes=0-7' } });
      assert.equal(first.statusCode, 206);
      assert.deepEqual(first.rawPayload, model.weights.subarray(0, 8));
      assert.equal(first.headers['content-range'], `bytes 0-7/${size}`);
      assert.equal(first.headers['content-length'], '8');

      const open = await api.app.inject({ method: 'GET', url, headers: { range: `bytes=${size - 10}-` } });
      assert.equal(open.statusCode, 206);
      assert.deepEqual(open.rawPayload, model.weights.subarray(size - 10));

      const suffix = await api.app.inject({ method: 'GET', url, headers: { range: 'bytes=-4' } });
      assert.equal(suffix.statusCode, 206);
      assert.deepEqual(suffix.rawPayload, model.weights.subarray(size - 4));
      assert.equal(suffix.headers['content-range'], `bytes ${size - 4}-${size - 1}/${size}`);

      const beyond = await api.app.inject({ method: 'GET', url, headers: { range: `bytes=${size}-` } });
      assert.equal(beyond.statusCode, 416);
      assert.equal(beyond.headers['content-range'], `bytes */${size}`);
      assert.equal(beyond.json().type, 'https://lorafuse.dev/problems/range-not-satisfiable');

      const several = await api.app.inject({ method: 'GET', url, headers: { range: 'bytes=0-1,4-5' } });
      assert.equal(several.statusCode, 200);
      assert.equal(several.rawPayload.length, size);
    });

    it('404s for an unknown artifact or file', async () => {
      const record = await uploadModel();
      for (const url of [
        `/v1/models/${record.id}/files/nope.bin`,
        '/v1/models/mdl_00000000000000000000000000/files/model.safetensors',
        '/v1/models/mdl_00000000000000000000000000',
        `/v1/adapters/${record.id}`,
      ]) {
        const response = await api.app.inject({ method: 'GET', url });
        assert.equal(response.statusCode, 404, url);
        assert.equal(response.headers['content-type'], PROBLEM);
      }
    });
  });

  describe('listing', () => {
    it('pages newest first and validates limit and cursor', async () => {
      const ids: string[] = [];
      for (let i = 0; i < 3; i++) ids.push((await uploadModel()).id);
      const first = await api.app.inject({ method: 'GET', url: '/v1/models?limit=2' });
      assert.equal(first.statusCode, 200);
      const page = first.json();
      assert.deepEqual(
        page.items.map((item: { id: string }) => item.id),
        [ids[2], ids[1]],
      );
      assert.equal(typeof page.nextCursor, 'string');
      const second = (
        await api.app.inject({ method: 'GET', url: `/v1/models?limit=2&cursor=${page.nextCursor}` })
      ).json();
      assert.deepEqual(
        second.items.map((item: { id: string }) => item.id),
        [ids[0]],
      );
      assert.equal(second.nextCursor, null);
      const all = (await api.app.inject({ method: 'GET', url: '/v1/models' })).json();
      assert.equal(all.items.length, 3);

      for (const query of ['limit=0', 'limit=101', 'limit=abc', 'cursor=', 'extra=1']) {
        const response = await api.app.inject({ method: 'GET', url: `/v1/models?${query}` });
        assert.equal(response.statusCode, 400, query);
        assert.equal(response.json().type, 'https://lorafuse.dev/problems/invalid-request');
        assert.ok(Array.isArray(response.json().errors), query);
      }
      const badCursor = await api.app.inject({ method: 'GET', url: '/v1/models?cursor=garbage' });
      assert.equal(badCursor.statusCode, 400);
      assert.equal(badCursor.json().type, 'https://lorafuse.dev/problems/invalid-cursor');
    });
  });

  describe('deletion', () => {
    it('removes the record and the blobs no other record uses', async () => {
      const first = await uploadModel();
      const second = await uploadModel();
      const response = await api.app.inject({ method: 'DELETE', url: `/v1/models/${first.id}` });
      assert.equal(response.statusCode, 204);
      assert.equal((await api.app.inject({ method: 'GET', url: `/v1/models/${first.id}` })).statusCode, 404);
      assert.equal((await api.snapshot()).blobs.length, 2);
      assert.equal(
        (await api.app.inject({ method: 'DELETE', url: `/v1/models/${second.id}` })).statusCode,
        204,
      );
      assert.deepEqual(await api.snapshot(), { models: 0, adapters: 0, datasets: 0, blobs: [], tmp: [] });
      const again = await api.app.inject({ method: 'DELETE', url: `/v1/models/${second.id}` });
      assert.equal(again.statusCode, 404);
    });

    it('is refused with 409 while a queued job reads the artifact', async () => {
      const record = await uploadModel();
      const job = await api.jobs.enqueueMerge({
        recipe: { merge_method: 'linear', models: [{ model: record.id }] },
        inputs: [record.id],
        seed: 1,
      });
      const refused = await api.app.inject({ method: 'DELETE', url: `/v1/models/${record.id}` });
      assert.equal(refused.statusCode, 409);
      assert.equal(refused.json().type, 'https://lorafuse.dev/problems/artifact-in-use');
      assert.deepEqual(refused.json().jobs, [job.id]);
      assert.equal((await api.snapshot()).models, 1);

      await api.jobs.cancel(job.id);
      const deleted = await api.app.inject({ method: 'DELETE', url: `/v1/models/${record.id}` });
      assert.equal(deleted.statusCode, 204);
    });
  });
});
