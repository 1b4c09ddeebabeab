import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import path from 'node:path';
import { after, afterEach, before, beforeEach, describe, it } from 'node:test';
import { startTestRedis, type TestRedis } from '../helpers/redis.ts';
import { MODULE, writeAdapterFolder, writeModelFolder } from '../store/fixtures.ts';
import { filePart, multipart, type Part, startApi, type TestApi } from './harness.ts';

async function folderParts(dir: string): Promise<Part[]> {
  const names = (await fs.readdir(dir)).sort();
  return Promise.all(names.map(async (name) => filePart(name, await fs.readFile(path.join(dir, name)))));
}

describe('adapters API', () => {
  let server: TestRedis;
  let api: TestApi;
  let baseId: string;

  before(async () => {
    server = await startTestRedis();
  });
  after(async () => {
    await server.stop();
  });
  beforeEach(async () => {
    api = await startApi(server.url);
    const base = await folderParts(await writeModelFolder(path.join(api.workDir, 'base')));
    const response = await api.app.inject({ method: 'POST', url: '/v1/models', ...multipart(base) });
    assert.equal(response.statusCode, 201, response.body);
    baseId = response.json().id;
  });
  afterEach(async () => {
    await api.close();
  });

  function upload(parts: Part[]) {
    return api.app.inject({ method: 'POST', url: '/v1/adapters', ...multipart(parts) });
  }

  it('stores a PEFT adapter with its rank, targets and config', async () => {
    const parts = await folderParts(await writeAdapterFolder(path.join(api.workDir, 'adapter')));
    const response = await upload(parts);
    assert.equal(response.statusCode, 201, response.body);
    const record = response.json();
    assert.match(record.id, /^adp_/);
    assert.equal(response.headers.location, `/v1/adapters/${record.id}`);
    assert.equal(record.kind, 'adapter');
    assert.equal(record.rank, 2);
    assert.deepEqual(record.targets, [MODULE]);
    assert.equal(record.baseModel, null);
    assert.equal(record.config.lora_alpha, 4);
    assert.deepEqual(await api.store.get(record.id), record);
    const list = (await api.app.inject({ method: 'GET', url: '/v1/adapters' })).json();
    assert.deepEqual(
      list.items.map((item: { id: string }) => item.id),
      [record.id],
    );
  });

  it('checks the adapter against base_model when one is given', async () => {
    const parts = await folderParts(await writeAdapterFolder(path.join(api.workDir, 'adapter')));
    const response = await upload([...parts, { name: 'base_model', data: baseId }]);
    assert.equal(response.statusCode, 201, response.body);
    assert.equal(response.json().baseModel, baseId);
  });

  // transformers 5 renamed ViT's modules (vit.layers.0.attention.q_proj) while its checkpoints on disk keep the
  // 4.x names (vit.encoder.layer.0.attention.attention.query): PEFT adapters come in both spellings.
  for (const [naming, folder] of [
    ['transformers-5', 'adapter'],
    ['transformers-4', 'adapter_t4'],
  ] as const) {
    it(`accepts a ViT adapter in ${naming} naming against the checkpoint it was made for`, async () => {
      const vit = path.join(import.meta.dirname, '..', 'fixtures', 'model', 'vit');
      const model = await api.app.inject({
        method: 'POST',
        url: '/v1/models',
        ...multipart(await folderParts(path.join(vit, 'model'))),
      });
      assert.equal(model.statusCode, 201, model.body);
      const parts = await folderParts(path.join(vit, folder));
      const response = await upload([...parts, { name: 'base_model', data: model.json().id }]);
      assert.equal(response.statusCode, 201, response.body);
      assert.equal(response.json().baseModel, model.json().id);
      // The same adapter against a model it does not fit is still refused.
      const wrong = await upload([...parts, { name: 'base_model', data: baseId }]);
      assert.equal(wrong.statusCode, 422, wrong.body);
      assert.match(wrong.json().type, /adapter-base-mismatch$/);
    });
  }

  it('accepts lorafuse extras beside the PEFT files', async () => {
    const dir = await writeAdapterFolder(path.join(api.workDir, 'llora'));
    await fs.writeFile(path.join(dir, 'lorafuse.json'), JSON.stringify({ mode: 'l-lora', seed: 3 }));
    await fs.copyFile(
      path.join(dir, 'adapter_model.safetensors'),
      path.join(dir, 'lorafuse_init.safetensors'),
    );
    const response = await upload(await folderParts(dir));
    assert.equal(response.statusCode, 201, response.body);
    assert.deepEqual(
      response.json().files.map((file: { name: string }) => file.name),
      ['adapter_config.json', 'adapter_model.safetensors', 'lorafuse.json', 'lorafuse_init.safetensors'],
    );
  });

  describe('rejects a bad adapter with a problem and stores nothing', () => {
    const cases: Array<{
      name: string;
      status: number;
      type: string;
      parts: (dir: string) => Promise<Part[]>;
      check?: (problem: Record<string, unknown>) => void;
    }> = [
      {
        name: 'a module missing in the base',
        status: 422,
        type: 'adapter-base-mismatch',
        parts: async (dir) => [
          ...(await folderParts(
            await writeAdapterFolder(dir, { module: 'model.layers.0.self_attn.k_proj' }),
          )),
          { name: 'base_model', data: baseId },
        ],
        check: (problem) => assert.equal(problem.module, 'model.layers.0.self_attn.k_proj'),
      },
      {
        name: 'a module of the wrong shape',
        status: 422,
        type: 'adapter-base-mismatch',
        parts: async (dir) => [
          ...(await folderParts(await writeAdapterFolder(dir, { inFeatures: 6 }))),
          { name: 'base_model', data: baseId },
        ],
        check: (problem) => {
          assert.equal(problem.module, MODULE);
          assert.match(String(problem.detail), /\[4,6\]|\[4, 6\]/);
        },
      },
      {
        name: 'a base_model that is not a stored model',
        status: 422,
        type: 'unknown-artifact',
        parts: async (dir) => [
          ...(await folderParts(await writeAdapterFolder(dir))),
          { name: 'base_model', data: 'mdl_00000000000000000000000000' },
        ],
        check: (problem) => assert.deepEqual(problem.artifacts, ['mdl_00000000000000000000000000']),
      },
      {
        name: 'no adapter_config.json',
        status: 422,
        type: 'missing-file',
        parts: async (dir) =>
          (await folderParts(await writeAdapterFolder(dir))).filter(
            (part) => part.name !== 'adapter_config.json',
          ),
        check: (problem) => assert.equal(problem.file, 'adapter_config.json'),
      },
      {
        name: 'adapter_config.json that is not JSON',
        status: 422,
        type: 'invalid-json',
        parts: async (dir) => [
          ...(await folderParts(await writeAdapterFolder(dir))).filter(
            (part) => part.name !== 'adapter_config.json',
          ),
          filePart('adapter_config.json', '{"r": 2,'),
        ],
      },
      {
        name: 'a rank that disagrees with the weights',
        status: 422,
        type: 'invalid-adapter',
        parts: async (dir) => [
          ...(await folderParts(await writeAdapterFolder(dir))).filter(
            (part) => part.name !== 'adapter_config.json',
          ),
          filePart(
            'adapter_config.json',
            JSON.stringify({ peft_type: 'LORA', r: 8, lora_alpha: 16, target_modules: ['q_proj'] }),
          ),
        ],
        check: (problem) => assert.equal(problem.module, MODULE),
      },
      {
        name: 'a model file in an adapter upload',
        status: 400,
        type: 'unexpected-file',
        parts: async (dir) => [
          ...(await folderParts(await writeAdapterFolder(dir))),
          filePart('model.safetensors', 'xx'),
        ],
      },
    ];

    for (const testCase of cases) {
      it(testCase.name, async () => {
        const before = await api.snapshot();
        const response = await upload(await testCase.parts(path.join(api.workDir, 'bad')));
        assert.equal(response.statusCode, testCase.status, response.body);
        assert.equal(response.headers['content-type'], 'application/problem+json; charset=utf-8');
        const problem = response.json();
        assert.equal(problem.type, `https://lorafuse.dev/problems/${testCase.type}`);
        testCase.check?.(problem);
        assert.deepEqual(await api.snapshot(), before);
      });
    }
  });
});
