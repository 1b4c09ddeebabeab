import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { parse } from 'yaml';
import { openApiYaml } from '../../src/api/openapi-document.ts';
import { REPO_ROOT } from '../helpers/golden.ts';
import { startTestRedis, type TestRedis } from '../helpers/redis.ts';
import { startApi, type TestApi } from './harness.ts';

const HTTP_METHODS = ['get', 'post', 'put', 'patch', 'delete'];

/** Fastify's `/v1/models/:id` is OpenAPI's `/v1/models/{id}`. */
function openApiPath(url: string): string {
  return url.replace(/:([A-Za-z0-9_]+)/g, '{$1}');
}

describe('openapi.yaml', () => {
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

  it('is what scripts/generate-openapi.ts writes from the route schemas (run `npm run openapi`)', () => {
    const committed = readFileSync(path.join(REPO_ROOT, 'openapi.yaml'), 'utf8');
    assert.equal(
      openApiYaml(api.app),
      committed,
      'openapi.yaml drifted from the routes: run `npm run openapi`',
    );
  });

  it('documents every route Fastify serves, and nothing else', () => {
    const spec = parse(readFileSync(path.join(REPO_ROOT, 'openapi.yaml'), 'utf8')) as {
      paths: Record<string, Record<string, unknown>>;
    };
    const served = new Set(
      api.app.routeTable
        .filter((route) => route.documented)
        .map((route) => `${route.method.toLowerCase()} ${openApiPath(route.url)}`),
    );
    const documented = new Set(
      Object.entries(spec.paths).flatMap(([url, operations]) =>
        Object.keys(operations)
          .filter((method) => HTTP_METHODS.includes(method))
          .map((method) => `${method} ${url}`),
      ),
    );
    assert.deepEqual(
      [...served].filter((route) => !documented.has(route)).sort(),
      [],
      'routes missing from the spec',
    );
    assert.deepEqual(
      [...documented].filter((route) => !served.has(route)).sort(),
      [],
      'spec paths with no route',
    );
    for (const route of [
      'post /v1/models',
      'post /v1/adapters',
      'get /v1/models/{id}/files/{name}',
      'post /v1/merges',
      'delete /v1/jobs/{id}',
      'get /v1/methods',
      'get /readyz',
    ]) {
      assert.ok(served.has(route), route);
    }
  });
});
