// The security headers computed once at start (src/api/plugins/security-headers.ts) are exactly those helmet's
// middleware sets on a real http.ServerResponse, for the defaults and for the API's own options, and the
// app sends that set on answers of every kind (a route, a refusal, a missing route).
import assert from 'node:assert/strict';
import { IncomingMessage, ServerResponse } from 'node:http';
import { Socket } from 'node:net';
import { after, before, describe, it } from 'node:test';
import helmet, { type HelmetOptions } from 'helmet';
import { securityHeaders } from '../../src/api/plugins/security-headers.ts';
import { startTestRedis, type TestRedis } from '../helpers/redis.ts';
import { startApi, type TestApi } from './harness.ts';

/** What helmet itself sets on one real response. */
function helmetOnResponse(options: HelmetOptions): Record<string, string> {
  const request = new IncomingMessage(new Socket());
  const response = new ServerResponse(request);
  let failure: unknown;
  helmet(options)(request, response, (error?: unknown) => {
    failure = error;
  });
  assert.equal(failure, undefined);
  return Object.fromEntries(
    Object.entries(response.getHeaders()).map(([name, value]) => [name, String(value)]),
  );
}

const API_OPTIONS: HelmetOptions = {
  contentSecurityPolicy: { directives: { defaultSrc: ["'none'"], frameAncestors: ["'none'"] } },
  crossOriginResourcePolicy: { policy: 'same-site' },
};

describe('security headers', () => {
  it('are what helmet sets on a response, for its defaults and for options like the API’s', () => {
    for (const options of [{}, API_OPTIONS, { hsts: false, xFrameOptions: { action: 'deny' as const } }]) {
      const ours = securityHeaders(options);
      assert.deepEqual(ours, helmetOnResponse(options));
      assert.ok(Object.keys(ours).length >= 10, 'a full set, not an empty one');
    }
  });

  describe('on the app’s answers', () => {
    let redis: TestRedis;
    let api: TestApi;
    before(async () => {
      redis = await startTestRedis();
      api = await startApi(redis.url, {}, {}, { env: { LORAFUSE_AUTH: 'true' } });
    });
    after(async () => {
      await api.close();
      await redis.stop();
    });

    it('sends the same set on a route, a 401 and a 404', async () => {
      const answers = await Promise.all(
        ['/healthz', '/v1/models', '/no-such-route'].map((url) => api.app.inject({ method: 'GET', url })),
      );
      assert.deepEqual(
        answers.map((answer) => answer.statusCode),
        [200, 401, 404],
      );
      const expected = Object.entries(securityHeaders({})).filter(
        ([name]) => name !== 'content-security-policy' && name !== 'cross-origin-resource-policy',
      );
      for (const answer of answers) {
        for (const [name, value] of expected)
          assert.equal(answer.headers[name], value, `${name} on ${answer.statusCode}`);
        assert.match(String(answer.headers['content-security-policy']), /^default-src 'none';/);
        assert.equal(answer.headers['cross-origin-resource-policy'], 'same-site');
      }
    });
  });
});
