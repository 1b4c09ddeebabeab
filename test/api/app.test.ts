import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import path from 'node:path';
import { Writable } from 'node:stream';
import { after, afterEach, before, beforeEach, describe, it } from 'node:test';
import { Redis } from 'ioredis';
import Fastify from 'fastify';
import { API_PREFIX, buildApp, lorafuseApi, serverOptions } from '../../src/api/app.ts';
import { loggerOptions, redactUrl } from '../../src/api/logger.ts';
import { JobService } from '../../src/queue/index.ts';
import { ArtifactStore } from '../../src/store/index.ts';
import { startTestRedis, type TestRedis } from '../helpers/redis.ts';
import { startApi, type TestApi } from './harness.ts';

const PROBLEM = 'application/problem+json; charset=utf-8';

describe('the app', () => {
  let server: TestRedis;
  let api: TestApi;

  before(async () => {
    server = await startTestRedis();
  });
  after(async () => {
    await server.stop();
  });
  beforeEach(async () => {
    api = await startApi(server.url);
  });
  afterEach(async () => {
    await api.close();
  });

  it('answers unknown routes with a 404 problem', async () => {
    const response = await api.app.inject({ method: 'GET', url: '/v1/nothing?x=1' });
    assert.equal(response.statusCode, 404);
    assert.equal(response.headers['content-type'], PROBLEM);
    assert.deepEqual(response.json(), {
      type: 'https://lorafuse.dev/problems/not-found',
      title: 'Not Found',
      status: 404,
      detail: 'no route for GET /v1/nothing',
      instance: '/v1/nothing?x=1',
    });
  });

  it('never leaks the message of a 500', async () => {
    // A record Redis holds but that is not JSON makes the handler throw a SyntaxError.
    const id = 'mdl_00000000000000000000000000';
    await api.redis.set(`${api.config.queuePrefix}:artifact:${id}`, '{secret internals');
    const response = await api.app.inject({ method: 'GET', url: `/v1/models/${id}` });
    assert.equal(response.statusCode, 500);
    assert.equal(response.headers['content-type'], PROBLEM);
    const problem = response.json();
    assert.equal(problem.type, 'https://lorafuse.dev/problems/internal-error');
    assert.doesNotMatch(response.body, /secret|JSON|Unexpected|SyntaxError/);
    assert.equal(problem.instance, `/v1/models/${id}`);
  });

  it('honours x-request-id and makes one otherwise', async () => {
    const sent = await api.app.inject({
      method: 'GET',
      url: '/healthz',
      headers: { 'x-request-id': 'ci-123' },
    });
    assert.equal(sent.headers['x-request-id'], 'ci-123');
    const made = await api.app.inject({ method: 'GET', url: '/healthz' });
    assert.match(String(made.headers['x-request-id']), /^[0-9a-f-]{36}$/);
    const hostile = await api.app.inject({
      method: 'GET',
      url: '/healthz',
      headers: { 'x-request-id': 'a b\u0001' },
    });
    assert.notEqual(hostile.headers['x-request-id'], 'a b\u0001');
  });

  it('reports health and readiness', async () => {
    const health = await api.app.inject({ method: 'GET', url: '/healthz' });
    assert.deepEqual(health.json(), { status: 'ok' });
    const ready = await api.app.inject({ method: 'GET', url: '/readyz' });
    assert.equal(ready.statusCode, 200, ready.body);
    assert.deepEqual(ready.json(), { status: 'ok', checks: { redis: 'ok', dataDir: 'ok', blobStore: 'ok' } });
  });

  it('is not ready when the data directory cannot be written', async () => {
    const tmp = path.join(api.dataDir, 'tmp');
    await fs.rm(tmp, { recursive: true });
    await fs.writeFile(tmp, 'not a directory');
    const response = await api.app.inject({ method: 'GET', url: '/readyz' });
    assert.equal(response.statusCode, 503);
    assert.equal(response.headers['content-type'], PROBLEM);
    assert.equal(response.json().type, 'https://lorafuse.dev/problems/not-ready');
    assert.deepEqual(response.json().checks, { redis: 'ok', dataDir: 'not writable', blobStore: 'ok' });
    await fs.rm(tmp);
    await fs.mkdir(tmp);
  });

  it('is not ready when Redis does not answer', async () => {
    const own = await startTestRedis();
    const redis = new Redis(own.url, { maxRetriesPerRequest: 1 });
    redis.on('error', () => undefined);
    const store = new ArtifactStore({ redis, dataDir: path.join(api.workDir, 'own'), prefix: 'own' });
    const jobs = new JobService({ redis, prefix: 'own' });
    const app = await buildApp({
      config: api.config,
      redis,
      store,
      jobs,
      logger: false,
      closeDependencies: false,
    });
    try {
      assert.equal((await app.inject({ method: 'GET', url: '/readyz' })).statusCode, 200);
      await own.stop();
      const response = await app.inject({ method: 'GET', url: '/readyz' });
      assert.equal(response.statusCode, 503, response.body);
      assert.equal(response.json().checks.redis, 'unavailable');
      assert.equal((await app.inject({ method: 'GET', url: '/healthz' })).statusCode, 200);
    } finally {
      await app.close();
      redis.disconnect();
    }
  });

  it('is a plugin: resources under /v1, health and docs at the root, the store initialised once', async () => {
    const redis = new Redis(server.url, { maxRetriesPerRequest: 1 });
    const dataDir = path.join(api.workDir, 'plugin');
    const store = new ArtifactStore({ redis, dataDir, prefix: 'plugin' });
    let inits = 0;
    const init = store.init.bind(store);
    store.init = () => {
      inits++;
      return init();
    };
    const jobs = new JobService({ redis, prefix: 'plugin' });
    const deps = { config: api.config, redis, store, jobs, logger: false as const, closeDependencies: false };
    // Registered on a bare server (as a host application would), not through buildApp.
    const app = Fastify(serverOptions(deps));
    await app.register(lorafuseApi, deps);
    await app.ready();
    try {
      assert.equal(inits, 1, 'store.init() runs once, as the app starts');
      await fs.access(path.join(dataDir, 'blobs'));
      const documented = app.routeTable.filter((route) => route.documented).map((route) => route.url);
      const root = documented.filter((url) => !url.startsWith(`${API_PREFIX}/`)).sort();
      // Operations stay at the root too; the /admin/queues dashboard is bull-board's and undocumented.
      assert.deepEqual(root, ['/healthz', '/metrics', '/readyz']);
      for (const resource of [
        'models',
        'adapters',
        'datasets',
        'merges',
        'finetunes',
        'evaluations',
        'jobs',
        'methods',
      ]) {
        assert.ok(documented.includes(`${API_PREFIX}/${resource}`), `${API_PREFIX}/${resource} is served`);
      }
      assert.equal(
        (await app.inject({ method: 'GET', url: '/docs' })).statusCode < 400,
        true,
        '/docs at the root',
      );
      assert.equal((await app.inject({ method: 'GET', url: '/v1/healthz' })).statusCode, 404);
      assert.equal((await app.inject({ method: 'GET', url: '/methods' })).statusCode, 404);
      const methods = await app.inject({ method: 'GET', url: '/v1/methods' });
      assert.equal(methods.statusCode, 200);
      assert.ok(app.store === store, 'the decorators belong to the host server (not encapsulated)');
    } finally {
      await app.close();
      redis.disconnect();
    }
  });

  it('lists every registered merge method with its parameters', async () => {
    const response = await api.app.inject({ method: 'GET', url: '/v1/methods' });
    assert.equal(response.statusCode, 200);
    const { items } = response.json();
    // The methods DESIGN.md promises, spelled as mergekit and PEFT spell them (a literal list, not the
    // registry the route maps: a method dropped or renamed in the registry fails here).
    const names: string[] = items.map((method: { name: string }) => method.name);
    for (const name of [
      'linear',
      'passthrough',
      'task_arithmetic',
      'ties',
      'dare_linear',
      'dare_ties',
      'breadcrumbs',
      'breadcrumbs_ties',
      'della',
      'della_linear',
      'slerp',
      'nuslerp',
      'multislerp',
      'karcher',
      'model_stock',
      'nearswap',
      'sce',
      'peft_linear',
      'peft_cat',
      'peft_svd',
      'peft_ties',
      'peft_ties_svd',
      'peft_magnitude_prune',
      'peft_magnitude_prune_svd',
    ]) {
      assert.ok(names.includes(name), `GET /v1/methods lacks ${name}`);
    }
    assert.equal(new Set(names).size, names.length, 'each method is listed once');
    const taskArithmetic = items.find((method: { name: string }) => method.name === 'task_arithmetic');
    assert.equal(taskArithmetic.kind, 'tensor');
    assert.equal(taskArithmetic.baseModel, 'required');
    const weight = taskArithmetic.parameters.find(
      (parameter: { name: string }) => parameter.name === 'weight',
    );
    assert.equal(weight.scope, 'per-model');
    assert.equal(typeof weight.required, 'boolean');
    assert.equal(typeof weight.description, 'string');
    for (const method of items) assert.equal(typeof method.description, 'string', method.name);
  });

  it('serves the OpenAPI document and its UI', async () => {
    const spec = await api.app.inject({ method: 'GET', url: '/openapi.json' });
    assert.equal(spec.statusCode, 200);
    assert.equal(spec.json().openapi, '3.1.0');
    assert.ok(spec.json().paths['/v1/merges']);
    const docs = await api.app.inject({ method: 'GET', url: '/docs' });
    assert.ok([200, 302].includes(docs.statusCode), String(docs.statusCode));
    const page = await api.app.inject({ method: 'GET', url: '/docs/' });
    assert.equal(page.statusCode, 200);
    assert.match(page.body, /swagger/i);
  });
});

describe('logging', () => {
  it('redacts credentials in Redis URLs', () => {
    assert.equal(redactUrl('redis://:hunter2@cache:6379/0'), 'redis://:[redacted]@cache:6379/0');
    assert.equal(redactUrl('rediss://user:hunter2@cache:6380'), 'rediss://user:[redacted]@cache:6380');
    assert.equal(redactUrl('redis://cache:6379'), 'redis://cache:6379');
    assert.equal(redactUrl('::not a url hunter2'), '[redacted]');
  });

  it('writes request ids and never a credential header or Redis password', async () => {
    const server = await startTestRedis();
    const lines: string[] = [];
    const stream = new Writable({
      write(chunk, _encoding, callback) {
        lines.push(String(chunk));
        callback();
      },
    });
    const api = await startApi(server.url);
    await api.close();
    const redis = new Redis(server.url, { maxRetriesPerRequest: 1 });
    const store = new ArtifactStore({ redis, dataDir: path.join(api.workDir, 'log'), prefix: 'log' });
    const jobs = new JobService({ redis, prefix: 'log' });
    const app = await buildApp({
      config: api.config,
      redis,
      store,
      jobs,
      logger: { ...loggerOptions('info'), stream, serializers: { req: (req) => ({ headers: req.headers }) } },
    });
    try {
      await app.inject({
        method: 'GET',
        url: '/v1/models',
        headers: {
          authorization: 'Bearer hunter2',
          'x-api-key': 'hunter2',
          cookie: 'sid=hunter2',
          'x-request-id': 'req-7',
        },
      });
      app.log.info({ redisUrl: 'redis://:hunter2@cache:6379' }, 'connected');
    } finally {
      await app.close();
      await server.stop();
      await fs.rm(api.workDir, { recursive: true, force: true });
    }
    const log = lines.join('');
    assert.match(log, /"reqId":"req-7"/);
    assert.match(log, /redis:\/\/:\[redacted\]@cache:6379/);
    assert.doesNotMatch(log, /hunter2/);
  });
});
