// A job's webhook delivery log in Redis: one record per attempt, oldest first, kept as long as failed jobs
// are (the job's own retention) and capped so that a flapping receiver cannot grow it without bound.
import type { Redis } from 'ioredis';
import { jobKeys, type WebhookAttemptRecord } from '../queue/index.ts';

const MAX_ATTEMPTS_LOGGED = 200;

export async function appendAttempt(
  redis: Redis,
  prefix: string,
  jobId: string,
  record: WebhookAttemptRecord,
  ttlSeconds: number,
): Promise<void> {
  const key = jobKeys(prefix).webhookLog(jobId);
  await redis
    .multi()
    .rpush(key, JSON.stringify(record))
    .ltrim(key, -MAX_ATTEMPTS_LOGGED, -1)
    .expire(key, Math.max(1, ttlSeconds))
    .exec();
}

export async function readDeliveryLog(
  redis: Redis,
  prefix: string,
  jobId: string,
): Promise<WebhookAttemptRecord[]> {
  const entries = await redis.lrange(jobKeys(prefix).webhookLog(jobId), 0, -1);
  return entries.map((entry) => JSON.parse(entry) as WebhookAttemptRecord);
}
