// Infrastructure faults answer 503 (Redis unreachable, with Retry-After) or 507 (data directory full),
// never 500, and /readyz says which dependency is down. Real processes: the test's redis-server is
// stopped mid-test; the data directory is a 2 MiB tmpfs filled by uploads.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs/promises';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { InjectOptions } from 'fastify';
import { startTestRedis, type TestRedis } from '../helpers/redis.ts';
import { writeModelFolder } from '../store/fixtures.ts';
import { writeSafetensors } from '../../src/tensors/index.ts';
import { filePart, multipart, startApi, type TestApi } from './harness.ts';

const PROBLEMS = 'https://lorafuse.dev/problems/';

async function modelParts(dir: string, offset: number): Promise<ReturnType<typeof multipart>> {
  const folder = await writeModelFolder(dir, { offset });
  const parts = [];
  for (const name of await fs.readdir(folder))
    parts.push(filePart(name, await fs.readFile(path.join(folder, name))));
  return multipart(parts);
}

/** A model whose weights take `bytes` (random, so it cannot be deduplicated against anything stored). */
async function bigModelParts(dir: string, bytes: number): Promise<ReturnType<typeof multipart>> {
  await fs.mkdir(dir, { recursive: true });
  const n = Math.floor(bytes / 4);
  const data = Float32Array.from({ length: n }, () => Math.random());
  await writeSafetensors(path.join(dir, 'model.safetensors'), [
    { name: 'w', dtype: 'F32', shape: [n], data },
  ]);
  return multipart([filePart('model.safetensors', await fs.readFile(path.join(dir, 'model.safetensors')))]);
}

describe('Redis unreachable: 503 with Retry-After', () => {
  let server: TestRedis;
  let api: TestApi;
  before(async () => {
    server = await startTestRedis();
    api = await startApi(server.url);
  });
  after(async () => {
    await api.close();
  });

  it('job reads, listings, uploads and merges answer 503 once redis-server is stopped; /readyz names redis', async () => {
    const stored = await api.app.inject({
      method: 'POST',
      url: '/v1/models',
      ...(await modelParts(path.join(api.workDir, 'm0'), 1)),
    });
    assert.equal(stored.statusCode, 201, stored.body);
    const id = stored.json().id;
    await server.stop();
    const requests: InjectOptions[] = [
      { method: 'GET', url: '/v1/jobs/123' },
      { method: 'GET', url: '/v1/jobs' },
      { method: 'GET', url: '/v1/models' },
      { method: 'GET', url: `/v1/models/${id}` },
      {
        method: 'POST',
        url: '/v1/merges',
        payload: { merge_method: 'linear', models: [{ model: id, parameters: { weight: 1 } }] },
      },
      { method: 'POST', url: '/v1/models', ...(await modelParts(path.join(api.workDir, 'm1'), 2)) },
    ];
    for (const request of requests) {
      const response = await api.app.inject(request);
      assert.equal(response.statusCode, 503, `${request.method} ${request.url}: ${response.body}`);
      assert.equal(response.headers['retry-after'], '5');
      const problem = response.json();
      assert.equal(problem.type, `${PROBLEMS}dependency-unavailable`);
      assert.equal(problem.dependency, 'redis');
      assert.doesNotMatch(problem.detail, /MaxRetriesPerRequest|Connection is closed/);
    }
    const ready = await api.app.inject({ method: 'GET', url: '/readyz' });
    assert.equal(ready.statusCode, 503);
    assert.deepEqual(ready.json().checks, { redis: 'unavailable', dataDir: 'ok', blobStore: 'ok' });
    // The refused upload left no staging file behind.
    assert.deepEqual((await api.snapshot().catch(() => null))?.tmp ?? [], []);
  });
});

describe('data directory full: 507', () => {
  let server: TestRedis;
  let api: TestApi;
  let mountDir: string;
  let mountError: string | undefined;
  before(async () => {
    server = await startTestRedis();
    mountDir = mkdtempSync(path.join(os.tmpdir(), 'lorafuse-full-'));
    try {
      execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=2m', 'tmpfs', mountDir], { stdio: 'pipe' });
    } catch (error) {
      mountError = (error as Error).message.split('\n')[0];
    }
    api = await startApi(server.url, {}, {}, { dataDir: path.join(mountDir, 'data') });
  });
  after(async () => {
    await api.close();
    await server.stop();
    if (mountError === undefined) execFileSync('umount', [mountDir]);
    rmSync(mountDir, { recursive: true, force: true });
  });

  it('an upload that fills the disk: 507, earlier artifacts intact, nothing half-written; works again once space is freed', async () => {
    // A real full disk needs a small tmpfs, so this test needs root (as .ci/run and the dev machines run).
    assert.equal(mountError, undefined, `mount -t tmpfs refused: ${mountError}`);
    const small = await api.app.inject({
      method: 'POST',
      url: '/v1/models',
      ...(await modelParts(path.join(api.workDir, 'small'), 3)),
    });
    assert.equal(small.statusCode, 201, small.body);
    const smallId = small.json().id;
    const smallWeights = await fs.readFile(path.join(api.workDir, 'small', 'model.safetensors'));
    const before = await api.snapshot();

    // 1.5 MiB of weights does not fit next to a 1 MiB filler on a 2 MiB disk.
    const filler = path.join(mountDir, 'filler');
    await fs.writeFile(filler, Buffer.alloc(1024 * 1024));
    const big = await bigModelParts(path.join(api.workDir, 'big'), 1.5 * 1024 * 1024);
    const refused = await api.app.inject({ method: 'POST', url: '/v1/models', ...big });
    assert.equal(refused.statusCode, 507, refused.body);
    assert.equal(refused.json().type, `${PROBLEMS}insufficient-storage`);
    assert.equal(refused.json().dependency, 'dataDir');
    assert.deepEqual(await api.snapshot(), before, 'no record, blob or staging file was added');

    const download = await api.app.inject({
      method: 'GET',
      url: `/v1/models/${smallId}/files/model.safetensors`,
    });
    assert.equal(download.statusCode, 200);
    assert.ok(download.rawPayload.equals(smallWeights), 'the earlier artifact reads back unchanged');

    // A disk with no room at all: /readyz names the data directory.
    const rest = path.join(mountDir, 'rest');
    await fs.writeFile(rest, Buffer.alloc(4 * 1024 * 1024)).catch(() => undefined);
    const ready = await api.app.inject({ method: 'GET', url: '/readyz' });
    assert.equal(ready.statusCode, 503, ready.body);
    assert.equal(ready.json().checks.dataDir, 'full');
    assert.equal(ready.json().checks.redis, 'ok');

    await fs.rm(filler);
    await fs.rm(rest, { force: true });
    const again = await api.app.inject({ method: 'POST', url: '/v1/models', ...big });
    assert.equal(again.statusCode, 201, again.body);
    assert.equal((await api.app.inject({ method: 'GET', url: '/readyz' })).statusCode, 200);
  });
});
