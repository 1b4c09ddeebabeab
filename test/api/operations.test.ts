// The operator surfaces without a worker: /metrics counts requests by route template, /admin/queues and the
// webhook delivery log stay behind the admin gate (refused by default, opened by the dev flag or by an injected
// authorize hook), and callback_url is checked before anything is queued.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { Redis } from 'ioredis';
import { buildApp, type LorafuseApp } from '../../src/api/index.ts';
import { ApiProblem } from '../../src/api/errors.ts';
import { type Config, loadConfig } from '../../src/config.ts';
import { JobService } from '../../src/queue/index.ts';
import { ArtifactStore } from '../../src/store/index.ts';
import { startTestRedis, type TestRedis, tempDir, uniquePrefix } from '../helpers/redis.ts';

describe('operations: metrics, admin gate, callback_url checks', () => {
  let server: TestRedis;
  const opened: Array<{ app: LorafuseApp; remove(): void }> = [];

  before(async () => {
    server = await startTestRedis();
  });
  after(async () => {
    for (const entry of opened) {
      await entry.app.close();
      entry.remove();
    }
    await server.stop();
  });

  async function app(
    env: Record<string, string> = {},
    authorizeAdmin?: Parameters<typeof buildApp>[0]['authorizeAdmin'],
  ): Promise<{ app: LorafuseApp; config: Config; jobs: JobService }> {
    const work = tempDir('lorafuse-ops');
    const prefix = uniquePrefix('ops');
    const config = loadConfig({
      LORAFUSE_DATA_DIR: work.dir,
      LORAFUSE_QUEUE_PREFIX: prefix,
      REDIS_URL: server.url,
      // The gate as it stands without API keys (flag, injected hook); with keys on, test/api/auth.test.ts.
      LORAFUSE_AUTH: 'false',
      ...env,
    });
    const redis = new Redis(server.url, { maxRetriesPerRequest: 1 });
    const store = new ArtifactStore({ redis, dataDir: work.dir, prefix });
    const jobs = new JobService({ redis, prefix });
    const built = await buildApp({ config, redis, store, jobs, logger: false, authorizeAdmin });
    opened.push({ app: built, remove: work.remove });
    return { app: built, config, jobs };
  }

  it('counts requests by route template (never the raw URL) and exports queue depths', async () => {
    const { app: api } = await app();
    await api.inject({ url: '/healthz' });
    await api.inject({ url: '/healthz' });
    await api.inject({ url: '/v1/jobs/job_a' });
    await api.inject({ url: '/v1/jobs/job_b' });
    const response = await api.inject({ url: '/metrics' });
    assert.equal(response.statusCode, 200);
    assert.match(response.headers['content-type'] as string, /^text\/plain; version=0.0.4/);
    const text = response.body;
    assert.match(
      text,
      /^lorafuse_http_requests_total\{method="GET",route="\/healthz",status_code="200"\} 2$/m,
    );
    assert.match(
      text,
      /^lorafuse_http_requests_total\{method="GET",route="\/v1\/jobs\/:id",status_code="404"\} 2$/m,
    );
    assert.ok(!text.includes('job_a'), 'ids never become labels');
    assert.match(
      text,
      /^lorafuse_http_request_duration_seconds_bucket\{le="\+Inf",method="GET",route="\/healthz",status_code="200"\} 2$/m,
    );
    for (const queue of ['merge', 'finetune', 'evaluate', 'analyze', 'webhooks']) {
      assert.match(text, new RegExp(`^lorafuse_queue_jobs\\{queue="${queue}",state="waiting"\\} 0$`, 'm'));
    }
    assert.match(text, /^# TYPE lorafuse_job_duration_seconds histogram$/m);
    assert.match(text, /^lorafuse_merged_bytes_total 0$/m);
    assert.match(text, /^lorafuse_api_process_resident_memory_bytes \d+/m);
  });

  it('can turn /metrics off', async () => {
    const { app: api } = await app({ LORAFUSE_METRICS: 'false' });
    assert.equal((await api.inject({ url: '/metrics' })).statusCode, 404);
  });

  it('refuses /admin/queues and delivery logs by default', async () => {
    const { app: api } = await app();
    for (const url of ['/admin/queues', '/admin/queues/api/queues', '/v1/jobs/job_x/webhooks']) {
      const response = await api.inject({ url });
      assert.equal(response.statusCode, 403, url);
      assert.equal(response.json().type, 'https://lorafuse.dev/problems/admin-disabled');
    }
  });

  it('serves the dashboard when the dev flag opens it', async () => {
    const { app: api } = await app({ LORAFUSE_ADMIN_OPEN: 'true' });
    const page = await api.inject({ url: '/admin/queues' });
    assert.equal(page.statusCode, 200);
    assert.match(page.headers['content-type'] as string, /text\/html/);
    const queues = await api.inject({ url: '/admin/queues/api/queues' });
    assert.equal(queues.statusCode, 200);
    const names = (queues.json() as { queues: Array<{ name: string }> }).queues.map((q) => q.name).sort();
    assert.deepEqual(names, ['analyze', 'evaluate', 'finetune', 'merge', 'webhooks']);
    // A job that does not exist is a 404 even for an admin.
    assert.equal((await api.inject({ url: '/v1/jobs/job_x/webhooks' })).statusCode, 404);
  });

  it('asks an injected authorize hook (an API key admin scope) on every admin request', async () => {
    const asked: string[] = [];
    const { app: api } = await app({}, async (request) => {
      asked.push(request.url);
      if (request.headers.authorization !== 'Bearer admin-key') {
        throw new ApiProblem('admin-disabled', 'admin scope required');
      }
    });
    assert.equal((await api.inject({ url: '/admin/queues' })).statusCode, 403);
    const allowed = await api.inject({
      url: '/admin/queues',
      headers: { authorization: 'Bearer admin-key' },
    });
    assert.equal(allowed.statusCode, 200);
    assert.deepEqual(asked, ['/admin/queues', '/admin/queues']);
  });

  it('checks callback_url before queueing: scheme, credentials, private addresses, a configured secret', async () => {
    const { app: strict, jobs } = await app({ LORAFUSE_WEBHOOK_SECRET: 'whsec-0123456789abcdef' });
    const body = (callback: unknown) => ({
      model: 'mdl_x',
      dataset: 'dst_y',
      mode: 'lora',
      callback_url: callback,
    });
    for (const [callback, type] of [
      ['ftp://example.com/hook', 'invalid-callback-url'],
      ['https://user:secret@example.com/hook', 'invalid-callback-url'],
      ['http://169.254.169.254/latest', 'invalid-callback-url'],
      ['http://10.0.0.7/hook', 'invalid-callback-url'],
    ] as const) {
      const response = await strict.inject({ method: 'POST', url: '/v1/finetunes', payload: body(callback) });
      assert.equal(response.statusCode, 422, `${callback}: ${response.body}`);
      assert.equal(response.json().type, `https://lorafuse.dev/problems/${type}`);
    }
    const tooLong = await strict.inject({
      method: 'POST',
      url: '/v1/finetunes',
      payload: body(`https://example.com/${'a'.repeat(2100)}`),
    });
    assert.equal(tooLong.statusCode, 400);
    // Without a secret a webhook could not be signed: refused, whatever the URL.
    const { app: unsigned } = await app();
    const merge = await unsigned.inject({
      method: 'POST',
      url: '/v1/merges',
      payload: {
        merge_method: 'linear',
        models: [{ model: 'mdl_a' }],
        callback_url: 'https://example.com/hook',
      },
    });
    assert.equal(merge.statusCode, 422);
    assert.equal(merge.json().type, 'https://lorafuse.dev/problems/webhooks-not-configured');
    assert.equal((await jobs.list({ limit: 10 })).items.length, 0, 'nothing was queued');
  });
});
