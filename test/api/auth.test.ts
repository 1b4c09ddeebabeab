// Access control as `serve` runs it (auth on): API keys with scopes and a project, the bootstrap key,
// projects that never see each other's artifacts, jobs or dedup (404, never 403), keys stored only as
// hashes and never logged, the OpenAPI security of every route, security headers, CORS and rate limits.
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { Writable } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import { loggerOptions } from '../../src/api/logger.ts';
import { AccessStore, projectWebhookSecrets, type Scope } from '../../src/store/index.ts';
import { startTestRedis, type TestRedis } from '../helpers/redis.ts';
import { writeModelFolder } from '../store/fixtures.ts';
import { filePart, multipart, startApi, type TestApi } from './harness.ts';

const BOOTSTRAP = 'bootstrap-key-for-tests-0123456789abcdef';

describe('access: keys, scopes and projects', () => {
  let redis: TestRedis;
  let api: TestApi;
  let access: AccessStore;
  let logs: string[];
  const models: Array<{ weights: Buffer; config: Buffer }> = [];

  before(async () => {
    redis = await startTestRedis();
    logs = [];
    const stream = new Writable({
      write(chunk, _encoding, callback) {
        logs.push(chunk.toString());
        callback();
      },
    });
    api = await startApi(
      redis.url,
      {},
      {},
      {
        env: { LORAFUSE_AUTH: 'true', LORAFUSE_BOOTSTRAP_KEY: BOOTSTRAP },
        // The service's own logger (redaction included), at debug so that every request line is written.
        logger: { ...loggerOptions('debug'), stream },
      },
    );
    access = new AccessStore(api.redis, api.config.queuePrefix);
    for (const offset of [0, 1]) {
      const dir = await writeModelFolder(path.join(api.workDir, `model-${offset}`), { offset });
      models.push({
        weights: await readFile(path.join(dir, 'model.safetensors')),
        config: await readFile(path.join(dir, 'config.json')),
      });
    }
  });
  after(async () => {
    await api.close();
    await redis.stop();
  });

  async function key(project: string, scopes: Scope[]): Promise<string> {
    return (await access.createKey({ project, scopes, name: `test ${project}` })).token;
  }

  function bearer(token: string): Record<string, string> {
    return { authorization: `Bearer ${token}` };
  }

  async function uploadModel(
    token: string,
    index = 0,
  ): Promise<{
    statusCode: number;
    body: Record<string, unknown> & { id: string; digest: string; project: string };
  }> {
    const body = multipart([
      filePart('model.safetensors', models[index].weights),
      filePart('config.json', models[index].config),
    ]);
    const response = await api.app.inject({
      method: 'POST',
      url: '/v1/models',
      payload: body.payload,
      headers: { ...body.headers, ...bearer(token) },
    });
    return { statusCode: response.statusCode, body: response.json() };
  }

  it('refuses a request without a key, with a malformed header or an unknown key (401, Bearer challenge)', async () => {
    for (const headers of [
      {},
      { authorization: 'Basic dXNlcjpwYXNz' },
      { authorization: 'Bearer lfk_000000000000_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA' },
      { authorization: 'Bearer not-a-key' },
    ]) {
      const response = await api.app.inject({ method: 'GET', url: '/v1/models', headers });
      assert.equal(response.statusCode, 401, JSON.stringify(headers));
      assert.equal(response.headers['content-type'], 'application/problem+json; charset=utf-8');
      assert.equal(response.json().type, 'https://lorafuse.dev/problems/unauthorized');
      assert.match(String(response.headers['www-authenticate']), /^Bearer realm="lorafuse"/);
    }
  });

  it('keeps health, readiness and the API document public', async () => {
    for (const url of ['/healthz', '/readyz', '/openapi.json']) {
      const response = await api.app.inject({ method: 'GET', url });
      assert.equal(response.statusCode, 200, url);
    }
  });

  it('holds each key to its scopes: read cannot write, write cannot administer (403)', async () => {
    const reader = await key('scopes', ['read']);
    const writer = await key('scopes', ['read', 'write']);
    assert.equal(
      (await api.app.inject({ method: 'GET', url: '/v1/models', headers: bearer(reader) })).statusCode,
      200,
    );
    const refused = await uploadModel(reader);
    assert.equal(refused.statusCode, 403);
    assert.equal(refused.body.type, 'https://lorafuse.dev/problems/forbidden');
    assert.equal(refused.body.scope, 'write');
    assert.equal((await uploadModel(writer)).statusCode, 201);
    const keys = await api.app.inject({ method: 'GET', url: '/v1/keys', headers: bearer(writer) });
    assert.equal(keys.statusCode, 403);
    assert.equal(keys.json().scope, 'admin');
  });

  it('accepts LORAFUSE_BOOTSTRAP_KEY as an admin key of the default project', async () => {
    const uploaded = await uploadModel(BOOTSTRAP);
    assert.equal(uploaded.statusCode, 201);
    assert.equal(uploaded.body.project, 'default');
    const project = await api.app.inject({ method: 'GET', url: '/v1/project', headers: bearer(BOOTSTRAP) });
    assert.equal(project.statusCode, 200);
    assert.equal(project.json().name, 'default');
    assert.match(project.json().webhookSecret, /^whsec_/);
    // Almost the bootstrap key is no key.
    const near = await api.app.inject({ method: 'GET', url: '/v1/models', headers: bearer(`${BOOTSTRAP}x`) });
    assert.equal(near.statusCode, 401);
  });

  it("answers another project's artifact ids with 404, lists only the caller's, and never deletes across", async () => {
    const alice = await key('alice', ['read', 'write']);
    const bob = await key('bob', ['read', 'write']);
    const mine = await uploadModel(alice);
    assert.equal(mine.statusCode, 201);
    const id = mine.body.id as string;
    assert.equal(mine.body.project, 'alice');
    for (const [method, url] of [
      ['GET', `/v1/models/${id}`],
      ['GET', `/v1/models/${id}/files/model.safetensors`],
      ['DELETE', `/v1/models/${id}`],
    ] as const) {
      const response = await api.app.inject({ method, url, headers: bearer(bob) });
      assert.equal(response.statusCode, 404, `${method} ${url}`);
      assert.equal(response.json().type, 'https://lorafuse.dev/problems/artifact-not-found');
    }
    // The same answer as for an id that never existed: nothing tells the two apart.
    const unknown = await api.app.inject({
      method: 'GET',
      url: `/v1/models/${id.slice(0, -1)}${id.endsWith('0') ? '1' : '0'}`,
      headers: bearer(bob),
    });
    assert.equal(unknown.statusCode, 404);
    const bobs = await api.app.inject({ method: 'GET', url: '/v1/models', headers: bearer(bob) });
    assert.deepEqual(bobs.json().items, []);
    const alices = await api.app.inject({ method: 'GET', url: '/v1/models', headers: bearer(alice) });
    assert.deepEqual(
      alices.json().items.map((item: { id: string }) => item.id),
      [id],
    );
    // Still there for its owner after bob's DELETE.
    const kept = await api.app.inject({ method: 'GET', url: `/v1/models/${id}`, headers: bearer(alice) });
    assert.equal(kept.statusCode, 200);
  });

  it('keeps content addressing per project: no existence leak through the digest lookup or dedup', async () => {
    const carol = await key('carol', ['read', 'write']);
    const dave = await key('dave', ['read', 'write']);
    const first = await uploadModel(carol, 1);
    assert.equal(first.statusCode, 201);
    const digest = first.body.digest as string;
    const lookup = (token: string) =>
      api.app.inject({ method: 'GET', url: `/v1/models?digest=${digest}`, headers: bearer(token) });
    assert.deepEqual(
      (await lookup(carol)).json().items.map((item: { id: string }) => item.id),
      [first.body.id],
    );
    assert.deepEqual((await lookup(dave)).json().items, [], 'dave cannot learn that carol holds these bytes');
    // dave uploading the same bytes gets a record of his own; deleting it leaves carol's intact.
    const second = await uploadModel(dave, 1);
    assert.equal(second.statusCode, 201);
    assert.notEqual(second.body.id, first.body.id);
    assert.equal(second.body.digest, digest);
    const removed = await api.app.inject({
      method: 'DELETE',
      url: `/v1/models/${second.body.id}`,
      headers: bearer(dave),
    });
    assert.equal(removed.statusCode, 204);
    const download = await api.app.inject({
      method: 'GET',
      url: `/v1/models/${first.body.id}/files/model.safetensors`,
      headers: bearer(carol),
    });
    assert.equal(download.statusCode, 200);
    assert.deepEqual(download.rawPayload, models[1].weights);
  });

  it("hides another project's jobs (404), refuses its artifact ids as inputs, and scopes Idempotency-Key", async () => {
    const erin = await key('erin', ['read', 'write']);
    const frank = await key('frank', ['read', 'write']);
    const a = (await uploadModel(erin, 0)).body.id as string;
    const b = (await uploadModel(erin, 1)).body.id as string;
    const recipe = {
      merge_method: 'linear',
      models: [
        { model: a, parameters: { weight: 1 } },
        { model: b, parameters: { weight: 1 } },
      ],
      dtype: 'float32',
    };
    const submit = (token: string) =>
      api.app.inject({
        method: 'POST',
        url: '/v1/merges',
        payload: recipe,
        headers: { ...bearer(token), 'idempotency-key': 'same-key' },
      });
    const queued = await submit(erin);
    assert.equal(queued.statusCode, 202, queued.body);
    const jobId = queued.json().id as string;
    const data = await api.redis.hget(`${api.config.queuePrefix}:jobs:project`, jobId);
    assert.equal(data, 'erin', 'the job records its project');
    for (const [method, url] of [
      ['GET', `/v1/jobs/${jobId}`],
      ['DELETE', `/v1/jobs/${jobId}`],
      ['GET', `/v1/jobs/${jobId}/report`],
    ] as const) {
      const response = await api.app.inject({ method, url, headers: bearer(frank) });
      assert.equal(response.statusCode, 404, `${method} ${url}`);
      assert.equal(response.json().type, 'https://lorafuse.dev/problems/job-not-found');
    }
    const franksJobs = await api.app.inject({ method: 'GET', url: '/v1/jobs', headers: bearer(frank) });
    assert.deepEqual(franksJobs.json().items, []);
    const erinsJobs = await api.app.inject({ method: 'GET', url: '/v1/jobs', headers: bearer(erin) });
    assert.deepEqual(
      erinsJobs.json().items.map((job: { id: string }) => job.id),
      [jobId],
    );
    // frank naming erin's models: the same 422 as for ids that do not exist; nothing is queued.
    const foreign = await submit(frank);
    assert.equal(foreign.statusCode, 422);
    assert.equal(foreign.json().type, 'https://lorafuse.dev/problems/unknown-artifact');
    assert.deepEqual(
      (await api.app.inject({ method: 'GET', url: '/v1/jobs', headers: bearer(frank) })).json().items,
      [],
    );
    // erin's job is still queued and hers to cancel.
    const cancelled = await api.app.inject({
      method: 'DELETE',
      url: `/v1/jobs/${jobId}`,
      headers: bearer(erin),
    });
    assert.equal(cancelled.statusCode, 200);
  });

  it('manages keys over HTTP within the admin’s project only, and a revoked key is refused at once', async () => {
    const admin = await key('gina', ['read', 'write', 'admin']);
    const otherProjectKey = await access.createKey({ project: 'hank', scopes: ['read'] });
    const made = await api.app.inject({
      method: 'POST',
      url: '/v1/keys',
      payload: { name: 'ci', scopes: ['read'] },
      headers: bearer(admin),
    });
    assert.equal(made.statusCode, 201);
    assert.equal(made.headers['cache-control'], 'no-store');
    const token = made.json().key as string;
    assert.match(token, /^lfk_[0-9a-f]{12}_/);
    assert.equal(made.json().record.project, 'gina');
    const listed = await api.app.inject({ method: 'GET', url: '/v1/keys', headers: bearer(admin) });
    const ids = listed.json().items.map((item: { id: string }) => item.id);
    assert.ok(ids.includes(made.json().record.id));
    assert.ok(!ids.includes(otherProjectKey.key.id), "another project's keys are not listed");
    assert.ok(!JSON.stringify(listed.json()).includes(token), 'listings never carry a key');
    const foreign = await api.app.inject({
      method: 'DELETE',
      url: `/v1/keys/${otherProjectKey.key.id}`,
      headers: bearer(admin),
    });
    assert.equal(foreign.statusCode, 404);
    assert.equal(
      (await api.app.inject({ method: 'GET', url: '/v1/models', headers: bearer(otherProjectKey.token) }))
        .statusCode,
      200,
    );
    assert.equal(
      (await api.app.inject({ method: 'GET', url: '/v1/models', headers: bearer(token) })).statusCode,
      200,
    );
    const revoked = await api.app.inject({
      method: 'DELETE',
      url: `/v1/keys/${made.json().record.id}`,
      headers: bearer(admin),
    });
    assert.equal(revoked.statusCode, 204);
    assert.equal(
      (await api.app.inject({ method: 'GET', url: '/v1/models', headers: bearer(token) })).statusCode,
      401,
    );
  });

  it('refuses a key revoked by another process (the CLI, another replica) once LORAFUSE_KEY_CACHE_S has passed', async () => {
    // A second API with a 1 s key cache; the key is revoked through a store of its own, as `lorafuse keys revoke` does.
    const replica = await startApi(
      redis.url,
      {},
      {},
      {
        env: {
          LORAFUSE_AUTH: 'true',
          LORAFUSE_KEY_CACHE_S: '1',
          LORAFUSE_QUEUE_PREFIX: api.config.queuePrefix,
        },
      },
    );
    try {
      assert.equal(replica.config.access.keyCacheMs, 1000);
      const made = await access.createKey({ project: 'jules', scopes: ['read'] });
      const get = () => replica.app.inject({ method: 'GET', url: '/v1/models', headers: bearer(made.token) });
      assert.equal((await get()).statusCode, 200);
      const revokedAt = Date.now();
      await access.revokeKey(made.key.id);
      // The replica read the key before the revocation, so its memory of it ends within 1 s of it.
      await new Promise((resolve) => setTimeout(resolve, revokedAt + 1000 + 20 - Date.now()));
      assert.equal((await get()).statusCode, 401);
    } finally {
      await replica.close();
    }
  });

  it('stores keys only as hashes and never writes a key or webhook secret to logs or job data', async () => {
    const token = await key('ivy', ['read', 'write', 'admin']);
    await uploadModel(token);
    const secret = (
      await api.app.inject({ method: 'GET', url: '/v1/project', headers: bearer(token) })
    ).json().webhookSecret as string;
    const a = (await uploadModel(token, 0)).body.id as string;
    const b = (await uploadModel(token, 1)).body.id as string;
    const queued = await api.app.inject({
      method: 'POST',
      url: '/v1/merges',
      payload: { merge_method: 'linear', models: [{ model: a }, { model: b }], parameters: { weight: 1 } },
      headers: bearer(token),
    });
    assert.equal(queued.statusCode, 202, queued.body);
    await api.app.inject({ method: 'GET', url: '/v1/models', headers: bearer(`${token}-wrong`) });
    // Every value under the deployment's prefix: the key appears nowhere, in no form but its hash.
    const dump: string[] = [];
    for (const name of await api.redis.keys(`${api.config.queuePrefix}:*`)) {
      const type = await api.redis.type(name);
      if (type === 'string') dump.push((await api.redis.get(name)) ?? '');
      else if (type === 'hash') dump.push(JSON.stringify(await api.redis.hgetall(name)));
      else if (type === 'list') dump.push(JSON.stringify(await api.redis.lrange(name, 0, -1)));
      else if (type === 'zset') dump.push(JSON.stringify(await api.redis.zrange(name, 0, -1)));
    }
    const everything = dump.join('\n');
    assert.ok(!everything.includes(token), 'the key is not stored');
    assert.ok(!everything.includes(token.split('_')[2]), 'nor its secret part');
    const jobData = await api.redis.hget(`${api.config.queuePrefix}:merge:${queued.json().id}`, 'data');
    assert.ok(jobData?.includes('"project":"ivy"'), 'the job data carries the project');
    assert.ok(!jobData?.includes(token) && !jobData?.includes(secret), 'and no key or secret');
    const logText = logs.join('');
    assert.ok(logText.includes('keyId'), 'requests are logged with the key id');
    assert.ok(logText.length > 0 && !logText.includes(token.split('_')[2]), 'no key in the logs');
    assert.ok(!logText.includes(BOOTSTRAP), 'no bootstrap key in the logs');
    assert.ok(!logText.includes(secret), 'no webhook secret in the logs');
  });

  it('declares every route’s security in the OpenAPI document, and each route enforces what it declares', async () => {
    const document = api.app.swagger() as {
      components: { securitySchemes: Record<string, { type: string; scheme: string }> };
      paths: Record<string, Record<string, { security?: Array<Record<string, string[]>> }>>;
    };
    assert.equal(document.components.securitySchemes.bearerAuth.type, 'http');
    assert.equal(document.components.securitySchemes.bearerAuth.scheme, 'bearer');
    const reader = await key('openapi', ['read']);
    let checked = 0;
    for (const route of api.app.routeTable.filter((entry) => entry.documented)) {
      const operation = document.paths[route.url.replace(/:(\w+)/g, '{$1}')]?.[route.method.toLowerCase()];
      assert.ok(operation, `${route.method} ${route.url} is documented`);
      const security = operation.security;
      assert.ok(Array.isArray(security), `${route.method} ${route.url} states its security`);
      const scope = security.length === 0 ? 'public' : security[0].bearerAuth?.[0];
      assert.ok(
        security.length === 0 ||
          (security.length === 1 && ['read', 'write', 'admin'].includes(scope as string)),
        `${route.method} ${route.url}: ${JSON.stringify(security)}`,
      );
      // What the route does matches what the document says: no key -> 401 unless public; a read key -> 403
      // exactly where write or admin is declared.
      const url = route.url.replace(/:(\w+)/g, 'x');
      const method = route.method as 'GET';
      const anonymous = await api.app.inject({ method, url });
      assert.equal(
        anonymous.statusCode === 401,
        scope !== 'public',
        `${route.method} ${route.url} without a key`,
      );
      if (scope !== 'public') {
        const read = await api.app.inject({ method, url, headers: bearer(reader) });
        assert.equal(
          read.statusCode === 403,
          scope !== 'read',
          `${route.method} ${route.url} with a read key`,
        );
      }
      checked++;
    }
    assert.ok(checked > 30, `every route checked (${checked})`);
    assert.deepEqual(document.paths['/v1/keys'].post.security, [{ bearerAuth: ['admin'] }]);
    assert.deepEqual(document.paths['/v1/models'].post.security, [{ bearerAuth: ['write'] }]);
    assert.deepEqual(document.paths['/v1/models'].get.security, [{ bearerAuth: ['read'] }]);
    assert.deepEqual(document.paths['/healthz'].get.security, []);
  });

  it('sends security headers on every answer', async () => {
    for (const url of ['/healthz', '/v1/models']) {
      const response = await api.app.inject({ method: 'GET', url });
      assert.equal(response.headers['x-content-type-options'], 'nosniff', url);
      assert.match(String(response.headers['content-security-policy']), /default-src 'none'/, url);
      assert.match(String(response.headers['strict-transport-security']), /max-age=/, url);
      assert.equal(response.headers['x-frame-options'], 'SAMEORIGIN', url);
    }
  });

  it('keeps the operator surfaces to admin keys: the queue dashboard and a job’s webhook delivery log', async () => {
    const reader = await key('default', ['read', 'write']);
    const admin = await key('default', ['read', 'admin']);
    const submitted = await api.app.inject({
      method: 'POST',
      url: '/v1/merges',
      payload: {
        merge_method: 'linear',
        models: [{ model: (await uploadModel(reader)).body.id, parameters: { weight: 1 } }],
      },
      headers: bearer(reader),
    });
    assert.equal(submitted.statusCode, 202, submitted.body);
    const log = `/v1/jobs/${submitted.json().id}/webhooks`;
    for (const url of ['/admin/queues', log]) {
      assert.equal((await api.app.inject({ method: 'GET', url })).statusCode, 401, url);
      const refused = await api.app.inject({ method: 'GET', url, headers: bearer(reader) });
      assert.equal(refused.statusCode, 403, url);
      assert.equal(refused.json().type.endsWith('/forbidden'), true, refused.body);
    }
    const dashboard = await api.app.inject({ method: 'GET', url: '/admin/queues', headers: bearer(admin) });
    assert.equal(dashboard.statusCode, 200, dashboard.body.slice(0, 200));
    assert.match(dashboard.body, /<html/i);
    const deliveries = await api.app.inject({ method: 'GET', url: log, headers: bearer(admin) });
    assert.equal(deliveries.statusCode, 200, deliveries.body);
    assert.deepEqual(deliveries.json().deliveries, []);
    // Another project's admin does not see this project's job at all.
    const stranger = await key('team-webhooks', ['read', 'admin']);
    assert.equal(
      (await api.app.inject({ method: 'GET', url: log, headers: bearer(stranger) })).statusCode,
      404,
    );
  });

  it('signs each project’s webhooks with its own secret, and the default project’s with LORAFUSE_WEBHOOK_SECRET when set', async () => {
    const configured = 'configured-default-project-secret';
    const secrets = projectWebhookSecrets(api.redis, api.config.queuePrefix, configured);
    assert.equal(await secrets('default'), configured);
    const a = await secrets('team-a-hooks');
    const b = await secrets('team-b-hooks');
    assert.match(a, /^whsec_/);
    assert.notEqual(a, b);
    assert.equal(await secrets('team-a-hooks'), a, 'made once, then read back');
    assert.equal(
      (await access.ensureProject('team-a-hooks')).webhookSecret,
      a,
      'the secret GET /v1/project shows',
    );
    const unconfigured = projectWebhookSecrets(api.redis, api.config.queuePrefix);
    assert.equal(await unconfigured('default'), (await access.ensureProject('default')).webhookSecret);
  });

  it('has CORS off by default: a browser on another origin gets no permission', async () => {
    const preflight = await api.app.inject({
      method: 'OPTIONS',
      url: '/v1/models',
      headers: { origin: 'https://evil.example', 'access-control-request-method': 'POST' },
    });
    assert.equal(preflight.headers['access-control-allow-origin'], undefined);
    const simple = await api.app.inject({
      method: 'GET',
      url: '/v1/models',
      headers: { origin: 'https://evil.example', ...bearer(BOOTSTRAP) },
    });
    assert.equal(simple.headers['access-control-allow-origin'], undefined);
  });
});

describe('access: CORS for configured dashboards, rate limits per key', () => {
  let redis: TestRedis;
  let api: TestApi;

  before(async () => {
    redis = await startTestRedis();
    api = await startApi(
      redis.url,
      {},
      {},
      {
        env: {
          LORAFUSE_AUTH: 'true',
          LORAFUSE_CORS_ORIGINS: 'https://dash.example',
          LORAFUSE_RATE_LIMIT: '3',
          LORAFUSE_RATE_LIMIT_WINDOW_S: '3600',
        },
      },
    );
  });
  after(async () => {
    await api.close();
    await redis.stop();
  });

  it('lets the configured origin in (preflight and response), and no other', async () => {
    const allowed = await api.app.inject({
      method: 'OPTIONS',
      url: '/v1/merges',
      headers: {
        origin: 'https://dash.example',
        'access-control-request-method': 'POST',
        'access-control-request-headers': 'authorization,content-type',
      },
    });
    assert.equal(allowed.statusCode, 204);
    assert.equal(allowed.headers['access-control-allow-origin'], 'https://dash.example');
    assert.match(String(allowed.headers['access-control-allow-headers']), /authorization/);
    assert.equal(allowed.headers['access-control-allow-credentials'], undefined);
    const other = await api.app.inject({
      method: 'OPTIONS',
      url: '/v1/merges',
      headers: { origin: 'https://evil.example', 'access-control-request-method': 'POST' },
    });
    assert.notEqual(other.headers['access-control-allow-origin'], 'https://evil.example');
    assert.equal(other.headers['access-control-allow-origin'], undefined);
  });

  it('limits each key on its own (429 problem with Retry-After), counted in Redis', async () => {
    const access = new AccessStore(api.redis, api.config.queuePrefix);
    const first = (await access.createKey({ project: 'limits', scopes: ['read'] })).token;
    const second = (await access.createKey({ project: 'limits', scopes: ['read'] })).token;
    const get = (token: string) =>
      api.app.inject({ method: 'GET', url: '/v1/jobs', headers: { authorization: `Bearer ${token}` } });
    const codes = [];
    for (let i = 0; i < 4; i++) codes.push((await get(first)).statusCode);
    assert.deepEqual(codes, [200, 200, 200, 429]);
    const limited = await get(first);
    assert.equal(limited.json().type, 'https://lorafuse.dev/problems/rate-limited');
    assert.ok(Number(limited.headers['retry-after']) > 0);
    assert.equal((await get(second)).statusCode, 200, 'another key has its own count');
    const counters = await api.redis.keys(`${api.config.queuePrefix}:ratelimit:*`);
    assert.ok(counters.length >= 2, 'the counts live in Redis, shared by every API process');
    // Probes are never limited.
    for (let i = 0; i < 5; i++) {
      assert.equal((await api.app.inject({ method: 'GET', url: '/healthz' })).statusCode, 200);
    }
  });
});
