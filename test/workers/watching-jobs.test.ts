// Watching jobs end to end, with real processes: the API listening on a loopback port, a real sandboxed merge
// worker and the webhook worker. SSE streams a job's states and progress and a reconnect with Last-Event-ID
// replays exactly what was missed; a local receiver verifies every webhook's signature and fails the first
// attempt, which is retried and logged; a job failed on the stalled-job path (its worker died once too often)
// sends job.failed too; /metrics, scraped after the jobs, counts them.
import assert from 'node:assert/strict';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { Worker } from 'bullmq';
import type { Redis } from 'ioredis';
import { buildApp, type LorafuseApp } from '../../src/api/index.ts';
import { type Config, loadConfig } from '../../src/config.ts';
import {
  compareStreamIds,
  createApiRedis,
  createWorkerRedis,
  JobService,
  type JobView,
  type MergeJobResult,
  QUEUE_NAMES,
} from '../../src/queue/index.ts';
import { ArtifactStore } from '../../src/store/index.ts';
import { SIGNATURE_HEADER, TIMESTAMP_HEADER, verifySignature } from '../../src/webhooks/index.ts';
import { type MergeWorkerHandle, startMergeWorker } from '../../workers/merge-worker.ts';
import { startWebhookWorker, type WebhookWorkerHandle } from '../../workers/webhook-worker.ts';
import { startTestRedis, type TestRedis, tempDir, uniquePrefix } from '../helpers/redis.ts';
import { openSse, type SseEvent } from '../helpers/sse.ts';
import { goldenTaskArithmetic, waitFor, waitForState } from './fixtures.ts';

const SECRET = 'whsec-test-0123456789abcdef';
/** Generous: only guards against hangs on a loaded machine. */
const JOB_TIMEOUT_MS = 180_000;

interface Received {
  headers: IncomingMessage['headers'];
  body: string;
  answered: number;
  signatureValid: boolean;
}

describe('watching jobs: SSE, webhooks and metrics with a real worker', () => {
  let server: TestRedis;
  let data: { dir: string; remove(): void };
  let prefix: string;
  let config: Config;
  let redis: Redis;
  let store: ArtifactStore;
  let jobs: JobService;
  let app: LorafuseApp;
  let base: string;
  let recipe: Record<string, unknown>;
  let merges: MergeWorkerHandle | undefined;
  let webhooks: WebhookWorkerHandle | undefined;
  let receiver: Server;
  let receiverUrl: string;
  const received: Received[] = [];

  function startMerges(): MergeWorkerHandle {
    return startMergeWorker({
      redisUrl: server.url,
      prefix,
      dataDir: data.dir,
      concurrency: 1,
      settings: { lockDurationMs: 30_000, stalledIntervalMs: 30_000, shutdownGraceMs: 10_000 },
      webhooks: { attempts: config.webhooks.attempts, backoffMs: config.webhooks.backoffMs },
    });
  }

  async function submit(extra: Record<string, unknown> = {}): Promise<string> {
    const response = await fetch(`${base}/v1/merges`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ ...recipe, ...extra }),
    });
    assert.equal(response.status, 202, await response.clone().text());
    return ((await response.json()) as JobView).id;
  }

  async function readAll(stream: Awaited<ReturnType<typeof openSse>>): Promise<SseEvent[]> {
    const events: SseEvent[] = [];
    for (let event = await stream.next(); event; event = await stream.next()) events.push(event);
    return events;
  }

  before(async () => {
    server = await startTestRedis();
    data = tempDir('lorafuse-watch');
    prefix = uniquePrefix('watch');
    config = loadConfig({
      LORAFUSE_DATA_DIR: data.dir,
      LORAFUSE_QUEUE_PREFIX: prefix,
      REDIS_URL: server.url,
      LORAFUSE_WEBHOOK_SECRET: SECRET,
      LORAFUSE_WEBHOOK_ALLOW_PRIVATE: 'true',
      LORAFUSE_WEBHOOK_BACKOFF_MS: '300',
      LORAFUSE_ADMIN_OPEN: 'true',
      // Events and webhooks as they run without API keys; keys, projects and the admin scope: test/api/auth.test.ts.
      LORAFUSE_AUTH: 'false',
    });
    redis = createApiRedis(server.url);
    store = new ArtifactStore({ redis, dataDir: data.dir, prefix });
    await store.init();
    jobs = new JobService({ redis, prefix, webhooks: { attempts: 8, backoffMs: 300 } });
    app = await buildApp({ config, redis, store, jobs, logger: false });
    await app.listen({ port: 0, host: '127.0.0.1' });
    base = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`;
    recipe = (await goldenTaskArithmetic(store, data.dir)).recipe;

    // The receiver checks every signature, and refuses the first delivery of each event with a 500.
    const seen = new Set<string>();
    receiver = createServer((request, response) => {
      const chunks: Buffer[] = [];
      request.on('data', (chunk: Buffer) => chunks.push(chunk));
      request.on('end', () => {
        const body = Buffer.concat(chunks).toString('utf8');
        const header = String(request.headers[SIGNATURE_HEADER] ?? '');
        const signatureValid = verifySignature(SECRET, header, body);
        const delivery = String(request.headers['x-lorafuse-delivery']);
        const answered = !signatureValid ? 401 : seen.has(delivery) ? 204 : 500;
        seen.add(delivery);
        received.push({ headers: request.headers, body, answered, signatureValid });
        response.writeHead(answered).end();
      });
    });
    await new Promise<void>((resolve) => receiver.listen(0, '127.0.0.1', resolve));
    receiverUrl = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/hooks/lorafuse?team=ml`;
  });

  after(async () => {
    await merges?.close(10_000);
    await webhooks?.close();
    await app.close();
    await new Promise((resolve) => receiver.close(resolve));
    await server.stop();
    data.remove();
  });

  it('streams states and progress live, and a reconnect with Last-Event-ID replays exactly the missed events', async () => {
    const jobId = await submit();
    const first = await openSse(`${base}/v1/jobs/${jobId}/events`);
    assert.equal(first.status, 200);
    assert.match(first.headers.get('content-type') ?? '', /^text\/event-stream/);
    const snapshot = await first.next();
    assert.ok(snapshot?.id, 'every event has an id');
    assert.equal(snapshot.event, 'state');
    assert.equal((snapshot.data as JobView).state, 'queued');
    assert.equal((snapshot.data as JobView).id, jobId);

    // The worker starts only now: its events reach the open stream live.
    merges = startMerges();
    let active: SseEvent | null = null;
    while (!active) {
      const event = await first.next();
      assert.ok(event, 'the stream stays open until the job finishes');
      if (event.event === 'state' && (event.data as { state: string }).state === 'active') active = event;
    }
    assert.ok(active.id && compareStreamIds(active.id, snapshot.id) > 0);
    first.close();

    // Disconnected while the job runs to its end.
    const done = await waitForState(jobs, jobId, ['completed', 'failed'], JOB_TIMEOUT_MS);
    assert.equal(done.state, 'completed', JSON.stringify(done.error));

    const second = await openSse(`${base}/v1/jobs/${jobId}/events`, active.id);
    assert.equal(second.status, 200);
    const replayed = await readAll(second);
    assert.ok(replayed.length >= 2, `replayed ${JSON.stringify(replayed)}`);
    // Nothing the first connection already had, in stream order, no duplicates.
    for (const [i, event] of replayed.entries()) {
      assert.ok(event.id && compareStreamIds(event.id, active.id) > 0, 'only events after Last-Event-ID');
      if (i > 0) assert.ok(compareStreamIds(event.id, replayed[i - 1].id as string) > 0, 'ids increase');
    }
    assert.ok(
      !replayed.some(
        (event) => event.event === 'state' && (event.data as { state: string }).state === 'active',
      ),
      'the active event was not sent again',
    );
    const progress = replayed.filter((event) => event.event === 'progress');
    assert.ok(progress.length >= 1, 'progress events were replayed');
    const last = progress[progress.length - 1].data as {
      phase: string;
      tensorsDone: number;
      tensorsTotal: number;
    };
    assert.equal(typeof last.tensorsTotal, 'number');
    const final = replayed[replayed.length - 1];
    assert.equal(final.event, 'state');
    const view = final.data as JobView;
    assert.equal(view.state, 'completed');
    assert.equal((view.result as MergeJobResult).artifact.id, (done.result as MergeJobResult).artifact.id);

    // Everything was received: a reconnect from the final id is a 204 (EventSource stops there).
    const third = await openSse(`${base}/v1/jobs/${jobId}/events`, final.id);
    assert.equal(third.status, 204);
    third.close();
    // A fresh watcher of a finished job gets its final state and the end of the stream.
    const fresh = await readAll(await openSse(`${base}/v1/jobs/${jobId}/events`));
    assert.equal(fresh.length, 1);
    assert.equal((fresh[0].data as JobView).state, 'completed');

    // An id the stream no longer holds (trimmed), or one it never held: the current state, not silence.
    for (const stale of ['1-0', '99999999999999-0']) {
      const resent = await readAll(await openSse(`${base}/v1/jobs/${jobId}/events`, stale));
      assert.deepEqual(
        resent.map((event) => [event.event, (event.data as JobView).state]),
        [['state', 'completed']],
        stale,
      );
    }

    const missing = await fetch(`${base}/v1/jobs/job_nope/events`);
    assert.equal(missing.status, 404);
    assert.match(missing.headers.get('content-type') ?? '', /problem\+json/);
  });

  it('POSTs a signed webhook, retries the refused first attempt, and logs both attempts', async () => {
    webhooks = startWebhookWorker({
      redisUrl: server.url,
      prefix,
      settings: config.webhooks,
      logTtlSeconds: 3600,
    });
    merges ??= startMerges();
    const jobId = await submit({ callback_url: receiverUrl });
    const done = await waitForState(jobs, jobId, ['completed', 'failed'], JOB_TIMEOUT_MS);
    assert.equal(done.state, 'completed', JSON.stringify(done.error));
    await waitFor(
      'the retried delivery',
      async () => received.some((r) => r.answered === 204),
      JOB_TIMEOUT_MS,
    );

    const deliveries = received.filter(
      (r) => (JSON.parse(r.body) as { data: { job: JobView } }).data.job.id === jobId,
    );
    assert.equal(deliveries.length, 2);
    assert.deepEqual(
      deliveries.map((r) => [r.answered, r.signatureValid]),
      [
        [500, true],
        [204, true],
      ],
    );
    const [firstTry, retry] = deliveries;
    assert.equal(firstTry.headers['x-lorafuse-delivery'], retry.headers['x-lorafuse-delivery']);
    assert.equal(retry.headers['x-lorafuse-event'], 'job.completed');
    assert.equal(retry.headers['content-type'], 'application/json');
    assert.match(String(retry.headers[TIMESTAMP_HEADER]), /^\d+$/);
    // The signature covers the timestamp and the exact body: any change breaks it.
    const header = String(retry.headers[SIGNATURE_HEADER]);
    assert.equal(verifySignature(SECRET, header, `${retry.body} `), false);
    assert.equal(verifySignature('another-secret-0123456789', header, retry.body), false);
    const event = JSON.parse(retry.body) as { id: string; type: string; data: { job: JobView } };
    assert.equal(event.type, 'job.completed');
    assert.equal(event.id, retry.headers['x-lorafuse-delivery']);
    assert.deepEqual(event.data.job.result, done.result);

    const log = await fetch(`${base}/v1/jobs/${jobId}/webhooks`);
    assert.equal(log.status, 200);
    const entries = (await log.json()) as {
      callbackUrl: string;
      deliveries: Array<{ attempt: number; status: number; outcome: string; nextAttemptAt: string | null }>;
    };
    assert.equal(entries.callbackUrl, receiverUrl);
    assert.deepEqual(
      entries.deliveries.map((d) => [d.attempt, d.status, d.outcome, d.nextAttemptAt !== null]),
      [
        [1, 500, 'retrying', true],
        [2, 204, 'delivered', false],
      ],
    );

    // The secret is in no job record, view or log entry.
    const bullKeys = await redis.keys(`${prefix}:*`);
    for (const key of bullKeys) {
      const type = await redis.type(key);
      const dump =
        type === 'hash'
          ? JSON.stringify(await redis.hgetall(key))
          : type === 'string'
            ? String(await redis.get(key))
            : type === 'list'
              ? JSON.stringify(await redis.lrange(key, 0, -1))
              : '';
      assert.ok(!dump.includes(SECRET), `${key} holds the webhook secret`);
    }
  });

  it('sends job.cancelled when a queued job with a callback is cancelled', async () => {
    await merges?.close(10_000);
    merges = undefined;
    const jobId = await submit({ callback_url: receiverUrl });
    const cancelled = await fetch(`${base}/v1/jobs/${jobId}`, { method: 'DELETE' });
    assert.equal(cancelled.status, 200);
    const delivered = await waitFor(
      'the job.cancelled webhook',
      async () =>
        received.find(
          (r) =>
            r.answered === 204 &&
            r.headers['x-lorafuse-event'] === 'job.cancelled' &&
            (JSON.parse(r.body) as { data: { job: JobView } }).data.job.id === jobId,
        ),
      JOB_TIMEOUT_MS,
    );
    assert.equal((JSON.parse(delivered.body) as { data: { job: JobView } }).data.job.state, 'cancelled');
  });

  it('sends job.failed for a job whose worker died once too often (failed on the stalled-job path)', async () => {
    assert.equal(merges, undefined, 'no merge worker runs: the dying worker below takes the job');
    const jobId = await submit({ callback_url: receiverUrl });
    // A worker that takes the job and dies: fetched by hand with a 300 ms lock it never renews.
    const connection = createWorkerRedis(server.url);
    const dying = new Worker(QUEUE_NAMES.merge, null, { connection, prefix, lockDuration: 300 });
    const taken = await dying.getNextJob('dying-worker');
    assert.equal(taken?.id, jobId);
    await dying.close(true);
    connection.disconnect();
    // As if its first worker had died too: past maxStalledCount (1), BullMQ fails a stalled job instead of
    // running it again, and it does so in the next worker that takes it (a deferred failure).
    await redis.hset(`${prefix}:${QUEUE_NAMES.merge}:${jobId}`, 'stc', 1);
    merges = startMergeWorker({
      redisUrl: server.url,
      prefix,
      dataDir: data.dir,
      concurrency: 1,
      settings: { lockDurationMs: 30_000, stalledIntervalMs: 200, shutdownGraceMs: 10_000 },
      webhooks: { attempts: config.webhooks.attempts, backoffMs: config.webhooks.backoffMs },
    });
    const failed = await waitForState(jobs, jobId, ['completed', 'failed'], JOB_TIMEOUT_MS);
    assert.equal(failed.state, 'failed');
    assert.match(JSON.stringify(failed.error), /stalled/);
    const delivered = await waitFor(
      'the job.failed webhook',
      async () =>
        received.find(
          (r) =>
            r.answered === 204 &&
            r.headers['x-lorafuse-event'] === 'job.failed' &&
            (JSON.parse(r.body) as { data: { job: JobView } }).data.job.id === jobId,
        ),
      JOB_TIMEOUT_MS,
    );
    assert.equal((JSON.parse(delivered.body) as { data: { job: JobView } }).data.job.state, 'failed');
  });

  it('exports job, queue and HTTP metrics scraped after the jobs', async () => {
    const response = await fetch(`${base}/metrics`);
    assert.equal(response.status, 200);
    assert.match(response.headers.get('content-type') ?? '', /^text\/plain/);
    const text = await response.text();
    const value = (series: string): number => {
      const line = text.split('\n').find((l) => l.startsWith(`${series} `));
      assert.ok(line, `${series} is exported`);
      return Number(line.slice(series.length + 1));
    };
    const completed = (await jobs.list({ type: 'merge', state: 'completed', limit: 100 })).items;
    assert.equal(completed.length, 2);
    assert.equal(value('lorafuse_job_duration_seconds_count{type="merge",outcome="completed"}'), 2);
    assert.equal(
      value('lorafuse_job_duration_seconds_bucket{type="merge",outcome="completed",le="+Inf"}'),
      2,
    );
    assert.equal(value('lorafuse_job_duration_seconds_count{type="merge",outcome="cancelled"}'), 1);
    // The job failed on the stalled-job path counts once, as any failure.
    assert.equal(value('lorafuse_job_duration_seconds_count{type="merge",outcome="failed"}'), 1);
    const durations = completed.map(
      (job) => (Date.parse(job.finishedAt as string) - Date.parse(job.startedAt as string)) / 1000,
    );
    assert.ok(
      Math.abs(
        value('lorafuse_job_duration_seconds_sum{type="merge",outcome="completed"}') -
          durations[0] -
          durations[1],
      ) < 1e-6,
    );
    let bytes = 0;
    for (const job of completed) {
      const record = await store.get((job.result as MergeJobResult).artifact.id);
      bytes += record?.files.reduce((sum, file) => sum + file.size, 0) ?? 0;
    }
    assert.ok(bytes > 0);
    assert.equal(value('lorafuse_merged_bytes_total'), bytes);
    assert.equal(value('lorafuse_queue_jobs{queue="merge",state="completed"}'), 2);
    assert.equal(value('lorafuse_queue_jobs{queue="merge",state="waiting"}'), 0);
    assert.equal(
      value('lorafuse_http_requests_total{method="POST",route="/v1/merges",status_code="202"}'),
      4,
    );
    assert.ok(
      value(
        'lorafuse_http_request_duration_seconds_count{method="POST",route="/v1/merges",status_code="202"}',
      ) === 4,
    );
  });
});
