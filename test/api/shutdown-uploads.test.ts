// SIGTERM on a real `lorafuse serve` process while uploads stream in slowly: it stops listening at
// once; uploads whose clients keep sending finish (201, stored whole); an upload whose client stalls
// is cut after LORAFUSE_SHUTDOWN_GRACE_MS and leaves nothing; the process exits 0 with no staging
// file left and every blob belonging to a record.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readdirSync } from 'node:fs';
import fs from 'node:fs/promises';
import http from 'node:http';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Redis } from 'ioredis';
import { ArtifactStore } from '../../src/store/index.ts';
import { writeSafetensors } from '../../src/tensors/index.ts';
import { spawnLorafuse, waitForOutput } from '../helpers/lorafuse-process.ts';
import { startTestRedis, tempDir, type TestRedis, uniquePrefix } from '../helpers/redis.ts';
import { acceptsConnections } from '../helpers/net.ts';
import { beforeHang, waitFor } from '../helpers/wait.ts';
import { diskState } from '../store/fixtures.ts';
import { filePart, multipart } from './harness.ts';

/** A model upload of `bytes` random weights (nothing to deduplicate) and the weights' sha256. */
async function modelUpload(dir: string, bytes: number) {
  await fs.mkdir(dir, { recursive: true });
  const file = path.join(dir, 'model.safetensors');
  const n = bytes / 4;
  await writeSafetensors(file, [
    { name: 'w', dtype: 'F32', shape: [n], data: Float32Array.from({ length: n }, () => Math.random()) },
  ]);
  const weights = await fs.readFile(file);
  return { ...multipart([filePart('model.safetensors', weights)]), sha256: sha(weights) };
}

function sha(data: Buffer): string {
  return createHash('sha256').update(data).digest('hex');
}

/** A POST whose body the test sends in two halves; the outcome is a status, or the error that ended it. */
function slowPost(url: string, body: { payload: Buffer; headers: Record<string, string> }) {
  const half = Math.floor(body.payload.length / 2);
  const request = http.request(`${url}/v1/models`, {
    method: 'POST',
    headers: { ...body.headers, 'content-length': String(body.payload.length) },
  });
  const outcome = new Promise<{ status?: number; body?: string; error?: string }>((resolve) => {
    request.on('response', (response) => {
      let text = '';
      response.on('data', (chunk) => {
        text += chunk;
      });
      response.on('end', () => resolve({ status: response.statusCode, body: text }));
      response.on('error', (error) =>
        resolve({ error: (error as NodeJS.ErrnoException).code ?? error.message }),
      );
    });
    request.on('error', (error) =>
      resolve({ error: (error as NodeJS.ErrnoException).code ?? error.message }),
    );
  });
  request.write(body.payload.subarray(0, half));
  return { outcome, finish: () => request.end(body.payload.subarray(half)) };
}

describe('SIGTERM on the API during uploads', () => {
  let server: TestRedis;
  let redis: Redis;
  const data = tempDir('lorafuse-sigterm');
  const prefix = uniquePrefix('sigterm');

  before(async () => {
    server = await startTestRedis();
    redis = new Redis(server.url);
  });
  after(async () => {
    redis.disconnect();
    await server.stop();
    data.remove();
  });

  it('finishes the uploads still sending, cuts the stalled one after the grace period, leaves no staging file', async () => {
    const dataDir = path.join(data.dir, 'data');
    const serve = spawnLorafuse(['serve'], {
      REDIS_URL: server.url,
      PORT: '0',
      LORAFUSE_DATA_DIR: dataDir,
      LORAFUSE_QUEUE_PREFIX: prefix,
      // Long enough for the two finishing bodies to arrive on a loaded machine: only a stalled body is cut.
      LORAFUSE_SHUTDOWN_GRACE_MS: '20000',
      LOG_LEVEL: 'info',
      // What is under test is the drain of in-flight uploads, not access control.
      LORAFUSE_AUTH: 'false',
    });
    const { child: api, exited } = serve;
    try {
      const [, url] = await waitForOutput(
        serve,
        'the API to listen',
        /listening at (http:\/\/127\.0\.0\.1:\d+)/,
      );
      const port = Number(new URL(url).port);
      const bodies = await Promise.all(
        [0, 1, 2].map((i) => modelUpload(path.join(data.dir, `upload-${i}`), 256 * 1024)),
      );
      const uploads = bodies.map((body) => slowPost(url, body));
      const staging = () =>
        readdirSync(path.join(dataDir, 'tmp')).filter((name) => name.startsWith('upload-'));
      await waitFor('all three uploads to be staging', async () => staging().length === 3);

      api.kill('SIGTERM');
      await waitFor('the API to stop listening', async () => !(await acceptsConnections(port)));
      // Two clients go on sending; the third stalls and is cut once the grace period is over.
      uploads[0].finish();
      uploads[1].finish();
      const [first, second, stalled] = await beforeHang(
        `every upload to end\n${serve.output()}`,
        Promise.all(uploads.map((upload) => upload.outcome)),
      );
      assert.equal(first.status, 201, `${JSON.stringify(first)}\n${serve.output()}`);
      assert.equal(second.status, 201, `${JSON.stringify(second)}\n${serve.output()}`);
      assert.equal(stalled.status, undefined, `the stalled upload got no answer: ${JSON.stringify(stalled)}`);
      assert.match(String(stalled.error), /ECONNRESET|socket hang up/);
      const exit = await beforeHang(`serve to exit\n${serve.output()}`, exited);
      assert.deepEqual(exit, { code: 0, signal: null }, serve.output());

      // What the finished uploads stored is whole; the cut one left no record, blob or staging file.
      const store = new ArtifactStore({ redis, dataDir, prefix });
      const records = (await store.list('model', { limit: 10 })).items;
      assert.deepEqual(
        records.map((record) => record.id).sort(),
        [JSON.parse(first.body as string).id, JSON.parse(second.body as string).id].sort(),
      );
      for (const [i, record] of [first, second].map((r) => JSON.parse(r.body as string)).entries()) {
        const stored = await fs.readFile(store.filePaths(record)['model.safetensors']);
        assert.ok(
          [bodies[0].sha256, bodies[1].sha256].includes(sha(stored)),
          `upload ${i} is stored byte for byte`,
        );
      }
      const disk = await diskState(dataDir);
      assert.deepEqual(disk.tmp, [], 'no staging file');
      assert.deepEqual(
        disk.blobs.sort(),
        records.flatMap((record) => record.files.map((file) => file.sha256)).sort(),
        'every blob belongs to a record',
      );
    } finally {
      if (api.exitCode === null && api.signalCode === null) {
        api.kill('SIGKILL');
        await exited;
      }
    }
  });
});
