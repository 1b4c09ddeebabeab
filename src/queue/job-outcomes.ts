// What follows a job reaching a final state, wherever that is seen (the worker host, or the API cancelling a
// queued job): cluster-wide job metrics are added to in Redis, where every API process reads the same totals
// at scrape time, and a webhook delivery is queued when the job carries a callback_url.
import { Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import {
  DEFAULT_PROJECT,
  type JobCallback,
  type JobType,
  WEBHOOK_QUEUE,
  type WebhookDeliveryPayload,
  type WebhookEvent,
} from './contract.ts';
import { jobKeys } from './keys.ts';

export type JobOutcome = 'completed' | 'failed' | 'cancelled';

/** Upper bounds (seconds) of the job duration histogram: a tiny merge to a long fine-tune. */
export const JOB_DURATION_BUCKETS = [
  0.5,
  1,
  2.5,
  5,
  10,
  30,
  60,
  120,
  300,
  600,
  1800,
  3600,
  4 * 3600,
  24 * 3600,
];

/** What one finished job adds beside its duration, measured by the worker host. */
export interface JobOutcomeExtras {
  /** Bytes of the artifact a merge wrote. */
  mergedBytes?: number;
  /** A fine-tune's throughput and mode (its result's samplesPerSecond). */
  training?: { mode: string; samplesPerSecond: number };
}

/** The fields of a BullMQ job this needs (a Job, or what a cancelled job's record still has). */
export interface FinishedJob {
  id?: string;
  data: unknown;
  processedOn?: number | null;
  finishedOn?: number | null;
}

export interface WebhookRetry {
  /** Deliveries tried per event. */
  attempts: number;
  /** First retry delay; it doubles with each attempt. */
  backoffMs: number;
}

const EVENT_OF: Record<JobOutcome, WebhookEvent> = {
  completed: 'job.completed',
  failed: 'job.failed',
  cancelled: 'job.cancelled',
};

/** The delivery id of one event of one job: the webhook queue's job id, so a repeated enqueue is a no-op. */
export function deliveryIdOf(jobId: string, outcome: JobOutcome): string {
  return `whd-${jobId}-${outcome}`;
}

/** Hash fields of the metrics key; `|` separates labels (job types, outcomes and modes never contain it). */
export const METRIC_FIELDS = {
  bucket: (type: string, outcome: string, le: string) => `duration_bucket|${type}|${outcome}|${le}`,
  count: (type: string, outcome: string) => `duration_count|${type}|${outcome}`,
  sum: (type: string, outcome: string) => `duration_sum|${type}|${outcome}`,
  mergedBytes: 'merged_bytes_total',
  samplesPerSecond: (mode: string) => `training_samples_per_second|${mode}`,
  trainingJobs: (mode: string) => `training_jobs_total|${mode}`,
};

export class JobOutcomes {
  private readonly keys: ReturnType<typeof jobKeys>;
  private webhooks: Queue | undefined;

  constructor(
    private readonly redis: Redis,
    private readonly prefix: string,
    private readonly retry: WebhookRetry = { attempts: 8, backoffMs: 2000 },
  ) {
    this.keys = jobKeys(prefix);
  }

  async record(
    type: JobType,
    job: FinishedJob,
    outcome: JobOutcome,
    extras: JobOutcomeExtras = {},
  ): Promise<void> {
    await this.addMetrics(type, job, outcome, extras);
    await this.queueWebhook(type, job, outcome);
  }

  private async addMetrics(
    type: JobType,
    job: FinishedJob,
    outcome: JobOutcome,
    extras: JobOutcomeExtras,
  ): Promise<void> {
    const multi = this.redis.multi();
    // A job cancelled while queued never ran: it counts with a zero duration.
    const seconds =
      job.processedOn && job.finishedOn ? Math.max(0, (job.finishedOn - job.processedOn) / 1000) : 0;
    for (const le of JOB_DURATION_BUCKETS) {
      if (seconds <= le) multi.hincrby(this.keys.metrics, METRIC_FIELDS.bucket(type, outcome, String(le)), 1);
    }
    multi.hincrby(this.keys.metrics, METRIC_FIELDS.count(type, outcome), 1);
    multi.hincrbyfloat(this.keys.metrics, METRIC_FIELDS.sum(type, outcome), seconds);
    if (extras.mergedBytes !== undefined && extras.mergedBytes > 0) {
      multi.hincrby(this.keys.metrics, METRIC_FIELDS.mergedBytes, Math.round(extras.mergedBytes));
    }
    if (extras.training && Number.isFinite(extras.training.samplesPerSecond)) {
      const { mode, samplesPerSecond } = extras.training;
      multi.hset(this.keys.metrics, METRIC_FIELDS.samplesPerSecond(mode), String(samplesPerSecond));
      multi.hincrby(this.keys.metrics, METRIC_FIELDS.trainingJobs(mode), 1);
    }
    await multi.exec();
  }

  private async queueWebhook(type: JobType, job: FinishedJob, outcome: JobOutcome): Promise<void> {
    const data = (job.data ?? {}) as JobCallback;
    if (!job.id || typeof data.callbackUrl !== 'string') return;
    const deliveryId = deliveryIdOf(job.id, outcome);
    const payload: WebhookDeliveryPayload = {
      deliveryId,
      event: EVENT_OF[outcome],
      jobId: job.id,
      jobType: type,
      callbackUrl: data.callbackUrl,
      project: data.project ?? DEFAULT_PROJECT,
      occurredAt: new Date(job.finishedOn ?? Date.now()).toISOString(),
    };
    this.webhooks ??= new Queue(WEBHOOK_QUEUE, { connection: this.redis, prefix: this.prefix });
    await this.webhooks.add('deliver', payload, {
      jobId: deliveryId,
      attempts: this.retry.attempts,
      backoff: { type: 'exponential', delay: this.retry.backoffMs },
      removeOnComplete: { age: 24 * 3600, count: 10_000 },
      removeOnFail: { age: 7 * 24 * 3600, count: 10_000 },
    });
  }

  async close(): Promise<void> {
    await this.webhooks?.close();
  }
}

/** The cluster-wide job metrics, as the API exports them. */
export interface JobMetricsSnapshot {
  durations: Array<{
    type: string;
    outcome: string;
    buckets: Array<{ le: number; count: number }>;
    count: number;
    sum: number;
  }>;
  mergedBytes: number;
  training: Array<{ mode: string; samplesPerSecond: number; jobs: number }>;
}

export async function readJobMetrics(redis: Redis, prefix: string): Promise<JobMetricsSnapshot> {
  const fields = await redis.hgetall(jobKeys(prefix).metrics);
  const durations = new Map<string, JobMetricsSnapshot['durations'][number]>();
  const training = new Map<string, { mode: string; samplesPerSecond: number; jobs: number }>();
  const series = (type: string, outcome: string) => {
    const key = `${type}|${outcome}`;
    let entry = durations.get(key);
    if (!entry) {
      entry = {
        type,
        outcome,
        buckets: JOB_DURATION_BUCKETS.map((le) => ({ le, count: 0 })),
        count: 0,
        sum: 0,
      };
      durations.set(key, entry);
    }
    return entry;
  };
  const mode = (name: string) => {
    let entry = training.get(name);
    if (!entry) {
      entry = { mode: name, samplesPerSecond: 0, jobs: 0 };
      training.set(name, entry);
    }
    return entry;
  };
  for (const [field, raw] of Object.entries(fields)) {
    const [name, ...labels] = field.split('|');
    const value = Number(raw);
    if (name === 'duration_bucket' && labels.length === 3) {
      const bucket = series(labels[0], labels[1]).buckets.find((entry) => String(entry.le) === labels[2]);
      if (bucket) bucket.count = value;
    } else if (name === 'duration_count' && labels.length === 2) series(labels[0], labels[1]).count = value;
    else if (name === 'duration_sum' && labels.length === 2) series(labels[0], labels[1]).sum = value;
    else if (name === 'training_samples_per_second' && labels.length === 1)
      mode(labels[0]).samplesPerSecond = value;
    else if (name === 'training_jobs_total' && labels.length === 1) mode(labels[0]).jobs = value;
  }
  return {
    durations: [...durations.values()],
    mergedBytes: Number(fields[METRIC_FIELDS.mergedBytes] ?? 0),
    training: [...training.values()],
  };
}
