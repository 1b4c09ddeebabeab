// Delivers job webhooks: a BullMQ worker on the webhook queue (in-process: delivery is I/O, not compute). Each
// attempt reads the job's final view, signs `<timestamp>.<body>` with the project's webhook secret, POSTs it and
// logs the attempt in the job's delivery log; a non-2xx answer or no answer is retried with exponential backoff
// until the attempts are spent (410 Gone stops at once). The secret is looked up per attempt and never stored.
import { type Job, UnrecoverableError, Worker } from 'bullmq';
import type { Redis } from 'ioredis';
import type { Logger } from 'pino';
import type { RedisDeployment, WebhookSettings } from '../src/config.ts';
import {
  createWorkerRedis,
  JobService,
  WEBHOOK_QUEUE,
  type WebhookAttemptRecord,
  type WebhookDeliveryPayload,
} from '../src/queue/index.ts';
import {
  appendAttempt,
  DELIVERY_HEADER,
  EVENT_HEADER,
  postWebhook,
  SIGNATURE_HEADER,
  secretFromConfig,
  signatureHeader,
  TIMESTAMP_HEADER,
  validateCallbackUrl,
  type WebhookSecretSource,
} from '../src/webhooks/index.ts';
import { LORAFUSE_VERSION, projectWebhookSecrets } from '../src/store/index.ts';

export interface WebhookWorkerOptions {
  redisUrl: string;
  deployment?: RedisDeployment;
  prefix: string;
  settings: WebhookSettings;
  /** How long delivery logs are kept (seconds): as long as failed jobs. */
  logTtlSeconds: number;
  secret?: WebhookSecretSource;
  /** Sign with each project's own secret (API keys on); otherwise LORAFUSE_WEBHOOK_SECRET for the default project. */
  projectSecrets?: boolean;
  concurrency?: number;
  logger?: Logger;
}

export interface WebhookWorkerHandle {
  worker: Worker;
  close(): Promise<void>;
}

export function startWebhookWorker(options: WebhookWorkerOptions): WebhookWorkerHandle {
  const connection: Redis = createWorkerRedis(options.redisUrl, undefined, options.deployment);
  const jobs = new JobService({ redis: connection, prefix: options.prefix });
  // With API keys on, every project signs with its own secret (the API checks callback_urls against the same).
  const secretOf =
    options.secret ??
    (options.projectSecrets
      ? projectWebhookSecrets(connection, options.prefix, options.settings.secret)
      : secretFromConfig(options.settings));
  const log = options.logger;

  async function deliver(job: Job<WebhookDeliveryPayload>): Promise<{ status: number }> {
    const delivery = job.data;
    const attempt = job.attemptsMade + 1;
    const last = attempt >= (job.opts.attempts ?? 1);
    const at = new Date();
    const record = async (entry: Partial<WebhookAttemptRecord>) => {
      const outcome = entry.outcome ?? (last ? 'failed' : 'retrying');
      const full: WebhookAttemptRecord = {
        deliveryId: delivery.deliveryId,
        event: delivery.event,
        attempt,
        at: at.toISOString(),
        url: delivery.callbackUrl,
        status: null,
        durationMs: 0,
        error: null,
        ...entry,
        outcome,
        nextAttemptAt:
          outcome === 'retrying'
            ? new Date(Date.now() + options.settings.backoffMs * 2 ** (attempt - 1)).toISOString()
            : null,
      };
      await appendAttempt(connection, options.prefix, delivery.jobId, full, options.logTtlSeconds);
    };

    const secret = await secretOf(delivery.project);
    if (!secret) {
      await record({ outcome: 'failed', error: `project ${delivery.project} has no webhook secret` });
      throw new UnrecoverableError('no webhook secret');
    }
    try {
      validateCallbackUrl(delivery.callbackUrl, {
        allowPrivateAddresses: options.settings.allowPrivateAddresses,
      });
    } catch (error) {
      await record({ outcome: 'failed', error: (error as Error).message });
      throw new UnrecoverableError((error as Error).message);
    }
    const view = await jobs.get(delivery.jobId);
    const body = JSON.stringify({
      id: delivery.deliveryId,
      type: delivery.event,
      createdAt: delivery.occurredAt,
      data: { job: view ?? { id: delivery.jobId, type: delivery.jobType } },
    });
    const timestamp = Math.floor(Date.now() / 1000);
    const answer = await postWebhook({
      url: delivery.callbackUrl,
      body,
      timeoutMs: options.settings.timeoutMs,
      allowPrivateAddresses: options.settings.allowPrivateAddresses,
      headers: {
        'content-type': 'application/json',
        'user-agent': `lorafuse-webhooks/${LORAFUSE_VERSION}`,
        [EVENT_HEADER]: delivery.event,
        [DELIVERY_HEADER]: delivery.deliveryId,
        [TIMESTAMP_HEADER]: String(timestamp),
        [SIGNATURE_HEADER]: signatureHeader(secret, timestamp, body),
      },
    });
    if (answer.error === null && answer.status !== null) {
      await record({ outcome: 'delivered', status: answer.status, durationMs: answer.durationMs });
      return { status: answer.status };
    }
    const gone = answer.status === 410;
    await record({
      outcome: gone ? 'failed' : undefined,
      status: answer.status,
      durationMs: answer.durationMs,
      error: answer.error,
    });
    log?.warn(
      {
        jobId: delivery.jobId,
        deliveryId: delivery.deliveryId,
        attempt,
        status: answer.status,
        err: answer.error,
      },
      'webhook delivery failed',
    );
    if (gone) throw new UnrecoverableError('receiver answered 410 Gone');
    throw new Error(answer.error ?? 'delivery failed');
  }

  const worker = new Worker<WebhookDeliveryPayload>(WEBHOOK_QUEUE, deliver, {
    connection,
    prefix: options.prefix,
    concurrency: options.concurrency ?? 8,
  });
  worker.on('error', (error) => log?.error({ err: error.message }, 'webhook worker error'));
  return {
    worker,
    async close() {
      await worker.close();
      await jobs.close();
      connection.disconnect();
    },
  };
}
