// Which callback URLs a job may carry, and the delivery-time address check that a name resolving to a
// non-public address cannot get around.
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { describe, it } from 'node:test';
import {
  CallbackUrlError,
  isNonPublicAddress,
  MAX_CALLBACK_URL_LENGTH,
  postWebhook,
  validateCallbackUrl,
} from '../../src/webhooks/index.ts';

const strict = { allowPrivateAddresses: false };
const open = { allowPrivateAddresses: true };

describe('callback URLs', () => {
  it('accepts public http and https URLs with paths and queries', () => {
    assert.equal(
      validateCallbackUrl('https://hooks.example.com/a?b=c', strict).hostname,
      'hooks.example.com',
    );
    assert.equal(validateCallbackUrl('http://93.184.216.34:8080/x', strict).port, '8080');
  });

  it('refuses other schemes, credentials, fragments, garbage and overlong URLs', () => {
    for (const url of [
      'ftp://example.com/x',
      'file:///etc/passwd',
      'javascript:alert(1)',
      'https://user:pass@example.com/',
      'https://example.com/#frag',
      'not a url',
      `https://example.com/${'a'.repeat(MAX_CALLBACK_URL_LENGTH)}`,
    ]) {
      assert.throws(() => validateCallbackUrl(url, open), CallbackUrlError, url);
    }
  });

  it('refuses non-public address literals unless allowed', () => {
    for (const url of [
      'http://127.0.0.1/',
      'http://10.1.2.3/',
      'http://172.20.0.1/',
      'http://192.168.1.1/',
      'http://169.254.169.254/latest/meta-data',
      'http://[::1]/',
      'http://[fd00::1]/',
      'http://[::ffff:127.0.0.1]/',
      'http://localhost:8080/',
      'http://0.0.0.0/',
    ]) {
      assert.throws(() => validateCallbackUrl(url, strict), /not a public address/, url);
      assert.doesNotThrow(() => validateCallbackUrl(url, open), url);
    }
    assert.equal(isNonPublicAddress('8.8.8.8'), false);
    assert.equal(isNonPublicAddress('2606:4700::1111'), false);
    assert.equal(isNonPublicAddress('100.64.0.1'), true);
  });

  it('checks the resolved address at delivery time (a name cannot reach a private address)', async () => {
    let hits = 0;
    const server = createServer((_request, response) => {
      hits++;
      response.writeHead(200).end();
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const port = (server.address() as AddressInfo).port;
    try {
      const options = { body: '{}', headers: { 'content-type': 'application/json' }, timeoutMs: 30_000 };
      const blocked = await postWebhook({
        ...options,
        url: `http://localhost:${port}/`,
        allowPrivateAddresses: false,
      });
      assert.equal(blocked.status, null);
      assert.match(blocked.error ?? '', /non-public address/);
      assert.equal(hits, 0);
      const allowed = await postWebhook({
        ...options,
        url: `http://localhost:${port}/`,
        allowPrivateAddresses: true,
      });
      assert.deepEqual([allowed.status, allowed.error], [200, null]);
      assert.equal(hits, 1);
    } finally {
      await new Promise((resolve) => server.close(resolve));
    }
  });

  it('does not follow redirects and reports non-2xx answers', async () => {
    const server = createServer((request, response) => {
      if (request.url === '/redirect') response.writeHead(302, { location: 'http://169.254.169.254/' }).end();
      else response.writeHead(503).end('busy');
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const port = (server.address() as AddressInfo).port;
    try {
      const options = { body: '{}', headers: {}, timeoutMs: 30_000, allowPrivateAddresses: true };
      const redirect = await postWebhook({ ...options, url: `http://127.0.0.1:${port}/redirect` });
      assert.equal(redirect.status, 302);
      assert.match(redirect.error ?? '', /not followed/);
      const busy = await postWebhook({ ...options, url: `http://127.0.0.1:${port}/` });
      assert.deepEqual([busy.status, busy.error], [503, 'receiver answered 503']);
    } finally {
      await new Promise((resolve) => server.close(resolve));
    }
  });
});
