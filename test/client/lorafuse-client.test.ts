// The typed client's own behaviour, over a recording fetch: the API key as a bearer token, problem
// documents as errors, YAML recipes, digest lookups, waiting with a timeout; and that it stays portable.
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import {
  type Job,
  JobWaitTimeoutError,
  LorafuseApiError,
  LorafuseClient,
  LorafuseConnectionError,
} from '../../src/client/index.ts';
import { REPO_ROOT } from '../helpers/golden.ts';

interface Sent {
  method: string;
  url: string;
  headers: Record<string, string>;
  body: unknown;
}

function recordingFetch(answer: (sent: Sent) => Response) {
  const sent: Sent[] = [];
  const fetchImpl = (async (input: URL | string, init: RequestInit = {}) => {
    const request: Sent = {
      method: init.method ?? 'GET',
      url: String(input),
      headers: init.headers as Record<string, string>,
      body: init.body,
    };
    sent.push(request);
    return answer(request);
  }) as typeof fetch;
  return { sent, fetchImpl };
}

const json = (status: number, body: unknown, type = 'application/json') =>
  new Response(JSON.stringify(body), { status, headers: { 'content-type': type } });

const job = (state: Job['state'], progress: Record<string, unknown> | null = null): Job => ({
  id: 'job_1',
  type: 'merge',
  state,
  progress,
  result: null,
  error: null,
  recipe: null,
  attempts: 1,
  createdAt: '2026-12-04T00:00:00.000Z',
  startedAt: null,
  finishedAt: null,
});

describe('LorafuseClient', () => {
  it('sends the API key as a bearer token only when one is set', async () => {
    const { sent, fetchImpl } = recordingFetch(() => json(200, { status: 'ok' }));
    await new LorafuseClient({ baseUrl: 'http://svc/', apiKey: 'k3y', fetch: fetchImpl }).health();
    await new LorafuseClient({ baseUrl: 'http://svc', fetch: fetchImpl }).health();
    assert.equal(sent[0].url, 'http://svc/healthz');
    assert.equal(sent[0].headers.authorization, 'Bearer k3y');
    assert.equal('authorization' in sent[1].headers, false);
  });

  it('turns a problem document into LorafuseApiError with its type and extensions', async () => {
    const problem = {
      type: 'https://lorafuse.dev/problems/invalid-recipe',
      title: 'Invalid recipe',
      status: 422,
      detail: 'models[0].parameters.weight is required',
      path: 'models[0]',
    };
    const { fetchImpl } = recordingFetch(() => json(422, problem, 'application/problem+json'));
    const client = new LorafuseClient({ baseUrl: 'http://svc', fetch: fetchImpl });
    await assert.rejects(
      client.submitMerge({ merge_method: 'linear', models: [{ model: 'mdl_x' }] }),
      (error) => {
        assert.ok(error instanceof LorafuseApiError);
        assert.equal(error.status, 422);
        assert.equal(error.problem.path, 'models[0]');
        assert.match(error.message, /POST \/v1\/merges: HTTP 422 Invalid recipe: models\[0\]/);
        return true;
      },
    );
    const { fetchImpl: gateway } = recordingFetch(
      () => new Response('<html>bad gateway</html>', { status: 502, statusText: 'Bad Gateway' }),
    );
    await assert.rejects(new LorafuseClient({ baseUrl: 'http://svc', fetch: gateway }).getJob('job_1'), {
      message: /GET \/v1\/jobs\/job_1: HTTP 502 Bad Gateway: <html>/,
    });
    const refused = (async () => {
      throw new TypeError('fetch failed', { cause: { code: 'ECONNREFUSED' } });
    }) as typeof fetch;
    await assert.rejects(new LorafuseClient({ baseUrl: 'http://svc', fetch: refused }).health(), (error) => {
      return (
        error instanceof LorafuseConnectionError && error.message === 'cannot reach http://svc: ECONNREFUSED'
      );
    });
  });

  it('sends a string recipe as application/yaml and an object as JSON, with the idempotency key', async () => {
    const { sent, fetchImpl } = recordingFetch(() => json(202, job('queued')));
    const client = new LorafuseClient({ baseUrl: 'http://svc', fetch: fetchImpl });
    await client.submitMerge('merge_method: linear\n', { idempotencyKey: 'ci-42' });
    await client.submitMerge({ merge_method: 'linear', models: [] });
    assert.equal(sent[0].headers['content-type'], 'application/yaml');
    assert.equal(sent[0].headers['idempotency-key'], 'ci-42');
    assert.equal(sent[0].body, 'merge_method: linear\n');
    assert.equal(sent[1].headers['content-type'], 'application/json');
    assert.equal(sent[1].body, '{"merge_method":"linear","models":[]}');
  });

  it('looks artifacts up by digest and names each upload part by its file name', async () => {
    const digest = 'a'.repeat(64);
    const { sent, fetchImpl } = recordingFetch((request) =>
      request.method === 'GET' ? json(200, { items: [], nextCursor: null }) : json(201, { id: 'adp_1' }),
    );
    const client = new LorafuseClient({ baseUrl: 'http://svc', fetch: fetchImpl });
    assert.equal(await client.findArtifactByDigest('adapter', digest), null);
    assert.equal(sent[0].url, `http://svc/v1/adapters?digest=${digest}`);
    await client.uploadArtifact('adapter', [
      { name: 'adapter_config.json', data: new Blob(['{}']) },
      { name: 'adapter_model.safetensors', data: new Blob([new Uint8Array(8)]) },
    ]);
    const form = sent[1].body as FormData;
    assert.deepEqual([...form.keys()], ['adapter_config.json', 'adapter_model.safetensors']);
    assert.equal((form.get('adapter_model.safetensors') as File).name, 'adapter_model.safetensors');
  });

  it('waits through updates to a terminal state, and gives up at its timeout', async () => {
    const views = [
      job('queued'),
      job('active', { phase: 'merging', tensorsDone: 1, tensorsTotal: 4 }),
      job('completed'),
    ];
    const { fetchImpl } = recordingFetch(() => json(200, views.length > 1 ? views.shift() : views[0]));
    const seen: string[] = [];
    const done = await new LorafuseClient({ baseUrl: 'http://svc', fetch: fetchImpl }).waitForJob('job_1', {
      intervalMs: 1,
      onUpdate: (view) => seen.push(view.state),
    });
    assert.equal(done.state, 'completed');
    assert.deepEqual(seen, ['queued', 'active', 'completed']);
    const { fetchImpl: stuck } = recordingFetch(() => json(200, job('queued')));
    await assert.rejects(
      new LorafuseClient({ baseUrl: 'http://svc', fetch: stuck }).waitForJob('job_1', {
        intervalMs: 1,
        timeoutMs: 30,
      }),
      (error) => error instanceof JobWaitTimeoutError && error.job.state === 'queued',
    );
  });

  it('imports nothing outside src/client and no Node built-in, so dashboards can bundle it', () => {
    const dir = path.join(REPO_ROOT, 'src', 'client');
    for (const file of readdirSync(dir)) {
      const imports = [
        ...readFileSync(path.join(dir, file), 'utf8').matchAll(/^(?:import|export|\})[^\n]*from '([^']+)'/gm),
      ].map((m) => m[1]);
      for (const target of imports) assert.match(target, /^\.\/[\w-]+\.ts$/, `${file} imports ${target}`);
    }
  });
});
