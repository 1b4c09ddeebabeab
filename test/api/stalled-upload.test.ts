// Uploads that stop sending: over real sockets (not inject), each sends its headers and 1 MiB of a model
// part, then goes silent. The idle timeout (LORAFUSE_IDLE_TIMEOUT_S) cuts every such connection, and the
// upload's staging files are removed: nothing is stored, nothing is left in tmp/.
import assert from 'node:assert/strict';
import net from 'node:net';
import { after, before, describe, it } from 'node:test';
import { startTestRedis, type TestRedis } from '../helpers/redis.ts';
import { waitFor } from '../workers/fixtures.ts';
import { startApi, type TestApi } from './harness.ts';

const STALLED = 3;
const SENT_BYTES = 1024 * 1024;

describe('stalled uploads', () => {
  let redis: TestRedis;
  let api: TestApi;
  let port: number;

  before(async () => {
    redis = await startTestRedis();
    // 5 s of silence: long enough to see the staging files appear first, even on a loaded machine.
    api = await startApi(redis.url, {}, {}, { env: { LORAFUSE_IDLE_TIMEOUT_S: '5' } });
    await api.app.listen({ port: 0, host: '127.0.0.1' });
    port = (api.app.server.address() as net.AddressInfo).port;
  });
  after(async () => {
    await api.close();
    await redis.stop();
  });

  /** Opens a socket, sends an upload's start and 1 MiB of its file, then nothing more; resolves on close. */
  function stallingUpload(): { closed: Promise<void>; socket: net.Socket } {
    const boundary = 'stall-boundary';
    const head = Buffer.from(
      `--${boundary}\r\nContent-Disposition: form-data; name="model.safetensors"; filename="model.safetensors"\r\n` +
        'Content-Type: application/octet-stream\r\n\r\n',
    );
    const socket = net.connect(port, '127.0.0.1');
    socket.on('error', () => undefined);
    const closed = new Promise<void>((resolve) => socket.on('close', () => resolve()));
    socket.on('connect', () => {
      socket.write(
        'POST /v1/models HTTP/1.1\r\nHost: 127.0.0.1\r\n' +
          `Content-Type: multipart/form-data; boundary=${boundary}\r\n` +
          // It promises far more than it sends.
          `Content-Length: ${100 * SENT_BYTES}\r\n\r\n`,
      );
      socket.write(head);
      socket.write(Buffer.alloc(SENT_BYTES, 7));
    });
    return { closed, socket };
  }

  it('cuts connections that stop sending and removes their staging files', async () => {
    const before = await api.snapshot();
    const uploads = Array.from({ length: STALLED }, () => stallingUpload());
    // The bytes reached the staging area (so the cut has something to clean up)...
    await waitFor(
      'the stalled uploads to be staged',
      async () => (await api.snapshot()).tmp.length >= 1,
      60_000,
    );
    // ...then the server ends every silent connection on its own (the generous deadline only guards a hang).
    await Promise.race([
      Promise.all(uploads.map((upload) => upload.closed)),
      new Promise((_, reject) =>
        setTimeout(() => reject(new Error('the server never cut the stalled uploads')), 120_000),
      ),
    ]);
    const state = await waitFor(
      'the staging files to be removed',
      async () => {
        const now = await api.snapshot();
        return now.tmp.length === 0 ? now : null;
      },
      60_000,
    );
    assert.equal(state.models, before.models, 'nothing stored');
    assert.deepEqual(state.blobs, before.blobs);
    // The service still answers.
    assert.equal((await api.app.inject({ method: 'GET', url: '/healthz' })).statusCode, 200);
    for (const upload of uploads) upload.socket.destroy();
  });
});
