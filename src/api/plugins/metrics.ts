// Prometheus metrics at GET /metrics (prom-client, one registry per app). Per process: HTTP request counts
// and latencies by route template and status, and Node's process metrics. Cluster-wide, read from Redis at
// scrape time so every API replica reports the same numbers: queue depths by state, job durations by type and
// outcome, bytes merged and fine-tuning throughput (the workers add to them as jobs finish).
import fp from 'fastify-plugin';
import { Counter, collectDefaultMetrics, Gauge, Histogram, type Metric, Registry } from 'prom-client';
import {
  type JobService,
  type JobType,
  QUEUE_NAMES,
  readJobMetrics,
  WEBHOOK_QUEUE,
} from '../../queue/index.ts';

declare module 'fastify' {
  interface FastifyInstance {
    metrics: Registry;
  }
}

type QueueOf = ReturnType<JobService['queue']>;
type CountedState = Parameters<QueueOf['getJobCounts']>[number];

const QUEUE_STATES: CountedState[] = [
  'waiting',
  'prioritized',
  'waiting-children',
  'active',
  'delayed',
  'paused',
  'completed',
  'failed',
];

/** Latency buckets (seconds): a cached GET in milliseconds to a large upload in minutes. */
const HTTP_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 120];

interface MetricValue {
  value: number;
  labels: Record<string, string | number>;
  metricName?: string;
}

/** A metric whose values are computed at scrape time (prom-client formats what get() returns). */
function scrapeTimeMetric(
  name: string,
  help: string,
  type: 'counter' | 'gauge' | 'histogram',
  values: () => Promise<MetricValue[]>,
): Metric {
  return {
    name,
    help,
    type,
    get: async () => ({ name, help, type, values: await values(), aggregator: 'first' }),
  } as unknown as Metric;
}

export default fp(
  async (app) => {
    const registry = new Registry();
    collectDefaultMetrics({ register: registry, prefix: 'lorafuse_api_' });

    const labelNames = ['method', 'route', 'status_code'] as const;
    const requests = new Counter({
      name: 'lorafuse_http_requests_total',
      help: 'HTTP requests answered by this API process, by method, route template and status.',
      labelNames,
      registers: [registry],
    });
    const latency = new Histogram({
      name: 'lorafuse_http_request_duration_seconds',
      help: 'Time from request received to response sent, by method, route template and status.',
      labelNames,
      buckets: HTTP_BUCKETS,
      registers: [registry],
    });
    app.addHook('onResponse', async (request, reply) => {
      // The route template, never the raw URL: ids in paths would make one series per artifact.
      const labels = {
        method: request.method,
        route: request.routeOptions.url ?? 'unmatched',
        status_code: String(reply.statusCode),
      };
      requests.inc(labels);
      latency.observe(labels, reply.elapsedTime / 1000);
    });

    const queueNames: Array<[string, () => QueueOf]> = [
      ...(Object.keys(QUEUE_NAMES) as JobType[]).map((type): [string, () => QueueOf] => [
        QUEUE_NAMES[type],
        () => app.jobs.queue(type),
      ]),
      [WEBHOOK_QUEUE, () => app.jobs.webhookQueue()],
    ];
    new Gauge({
      name: 'lorafuse_queue_jobs',
      help: 'Jobs in each queue by BullMQ state (completed and failed: those retention still keeps).',
      labelNames: ['queue', 'state'],
      registers: [registry],
      async collect() {
        this.reset();
        const counts = await Promise.all(
          queueNames.map(([, queue]) => queue().getJobCounts(...QUEUE_STATES)),
        );
        queueNames.forEach(([name], i) => {
          for (const state of QUEUE_STATES) this.set({ queue: name, state }, counts[i][state] ?? 0);
        });
      },
    });

    // One Redis read per scrape serves the three job metrics below.
    let snapshot: ReturnType<typeof readJobMetrics> | undefined;
    const jobMetrics = () => {
      snapshot ??= readJobMetrics(app.redis, app.jobs.prefix).finally(() =>
        setImmediate(() => {
          snapshot = undefined;
        }),
      );
      return snapshot;
    };
    registry.registerMetric(
      scrapeTimeMetric(
        'lorafuse_job_duration_seconds',
        'Run time of finished jobs (first start to final state), by job type and outcome (completed, failed, cancelled).',
        'histogram',
        async () => {
          const values: MetricValue[] = [];
          for (const series of (await jobMetrics()).durations) {
            const labels = { type: series.type, outcome: series.outcome };
            for (const bucket of series.buckets) {
              values.push({
                metricName: 'lorafuse_job_duration_seconds_bucket',
                labels: { ...labels, le: bucket.le },
                value: bucket.count,
              });
            }
            values.push({
              metricName: 'lorafuse_job_duration_seconds_bucket',
              labels: { ...labels, le: '+Inf' },
              value: series.count,
            });
            values.push({ metricName: 'lorafuse_job_duration_seconds_sum', labels, value: series.sum });
            values.push({ metricName: 'lorafuse_job_duration_seconds_count', labels, value: series.count });
          }
          return values;
        },
      ),
    );
    registry.registerMetric(
      scrapeTimeMetric(
        'lorafuse_merged_bytes_total',
        'Bytes of the artifacts completed merges wrote.',
        'counter',
        async () => [{ labels: {}, value: (await jobMetrics()).mergedBytes }],
      ),
    );
    registry.registerMetric(
      scrapeTimeMetric(
        'lorafuse_training_samples_per_second',
        'Training throughput (samples/s) of the last completed fine-tune, by mode (lora, llora, full).',
        'gauge',
        async () =>
          (await jobMetrics()).training.map((entry) => ({
            labels: { mode: entry.mode },
            value: entry.samplesPerSecond,
          })),
      ),
    );
    registry.registerMetric(
      scrapeTimeMetric(
        'lorafuse_training_jobs_total',
        'Completed fine-tunes, by mode.',
        'counter',
        async () =>
          (await jobMetrics()).training.map((entry) => ({ labels: { mode: entry.mode }, value: entry.jobs })),
      ),
    );

    app.decorate('metrics', registry);
  },
  { name: 'lorafuse-metrics', fastify: '5.x', dependencies: ['lorafuse-jobs', 'lorafuse-redis'] },
);
