// The API's and the CLI's view of jobs: submits them (one BullMQ queue per job type, ids chosen by
// us), reads them back as JobView, lists them newest first with a stable cursor, and cancels them.
// A service is a view of one project (`forProject`): it queues jobs carrying that project, and another
// project's jobs read as missing (the API answers 404, never 403).
import { createHash, randomUUID } from 'node:crypto';
import { FlowProducer, Job, Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import {
  type AnalyzeJobPayload,
  DEFAULT_JOB_PROJECT,
  DEFAULT_JOB_RETENTION,
  type JobRetention,
  jobOptions,
  type EvaluateJobPayload,
  type FinetuneJobPayload,
  type JobState,
  type JobType,
  type JobView,
  type MergeJobPayload,
  QUEUE_NAMES,
  WEBHOOK_QUEUE,
} from './contract.ts';
import { JobEventHub } from './job-events.ts';
import { JobOutcomes, type WebhookRetry } from './job-outcomes.ts';
import { toJobView } from './job-view.ts';
import { FLAG_TTL_SECONDS, jobKeys } from './keys.ts';
import { readJobSnapshot } from './job-snapshot.ts';
import { readSearchProgress } from './search-progress.ts';

export class JobNotCancellableError extends Error {
  constructor(
    readonly jobId: string,
    readonly state: JobState,
  ) {
    super(`job ${jobId} is ${state} and can no longer be cancelled`);
    this.name = 'JobNotCancellableError';
  }
}

export class JobNotFoundError extends Error {
  constructor(readonly jobId: string) {
    super(`job ${jobId} does not exist`);
    this.name = 'JobNotFoundError';
  }
}

/** The Idempotency-Key was already used with a different body (HTTP 409). */
export class IdempotencyKeyReuseError extends Error {
  constructor(
    readonly key: string,
    readonly jobId: string,
  ) {
    super(`Idempotency-Key "${key}" was already used for job ${jobId} with a different request body`);
    this.name = 'IdempotencyKeyReuseError';
  }
}

export class InvalidCursorError extends Error {
  constructor() {
    super('cursor is not one this service returned');
    this.name = 'InvalidCursorError';
  }
}

/** sha256 of a JSON value with object keys sorted, so that key order does not change the hash. */
export function hashBody(value: unknown): string {
  const canonical = (v: unknown): unknown => {
    if (Array.isArray(v)) return v.map(canonical);
    if (v && typeof v === 'object') {
      return Object.fromEntries(
        Object.keys(v as Record<string, unknown>)
          .sort()
          .map((k) => [k, canonical((v as Record<string, unknown>)[k])]),
      );
    }
    return v;
  };
  return createHash('sha256')
    .update(JSON.stringify(canonical(value)))
    .digest('hex');
}

export interface SubmitOptions {
  idempotencyKey?: string;
  /** Hash of the request as the client sent it; defaults to hashBody(payload). */
  bodyHash?: string;
  /**
   * Child jobs on the same queue (a search's grid points): the job and its children go in as one BullMQ flow.
   * The parent waits until every child completed (a failed child fails it); completed children are never
   * re-run, so a crash resumes where it stopped. Each child is a job of its own: `<id>-p<index>`.
   */
  children?: object[];
}

interface CancelledRecord {
  view: JobView;
}

const JOB_TYPES = Object.keys(QUEUE_NAMES) as JobType[];
/** How long an indexed id must stay without its BullMQ job before its keys are pruned. */
const PRUNE_GRACE_MS = 60_000;
const PENDING_STATES = ['waiting', 'prioritized', 'delayed', 'paused', 'waiting-children', 'active'] as const;

/** How many jobs' type and project a service remembers (JobService.readIdentity). */
const KNOWN_JOBS = 10_000;

interface JobIdentity {
  type: JobType;
  owner: string;
}

/** A job type recorded in our index (anything else is not a job of ours). */
function isOwnType(type: string | null): type is JobType {
  return type !== null && type in QUEUE_NAMES;
}

function encodeCursor(sequence: number): string {
  return Buffer.from(`s:${sequence}`).toString('base64url');
}

function decodeCursor(cursor: string): number {
  const match = /^s:(\d+)$/.exec(Buffer.from(cursor, 'base64url').toString());
  if (!match) throw new InvalidCursorError();
  return Number(match[1]);
}

export class JobService {
  readonly prefix: string;
  /** The project whose jobs this view queues and sees. */
  readonly project: string = DEFAULT_JOB_PROJECT;
  private readonly redis: Redis;
  private readonly queues: Record<JobType, Queue>;
  private readonly keys: ReturnType<typeof jobKeys>;
  /** BullMQ's connection: options.queueRedis (this service closes it) or the shared one. */
  private readonly connection: Redis;
  private readonly ownsConnection: boolean;
  /** Type and project of jobs read before (bounded; shared by every project's view). */
  private readonly identities = new Map<string, JobIdentity>();
  /** Made on first use and shared by every project's view (a view must not make its own). */
  private readonly lazy: { flows?: FlowProducer } = {};

  private readonly retention: JobRetention;
  private readonly pruneGraceMs: number;
  /** Metrics and the webhook of a job cancelled while queued (the worker host does it for jobs that ran). */
  private readonly outcomes: JobOutcomes;

  constructor(options: {
    redis: Redis;
    prefix: string;
    onError?: (error: Error) => void;
    /** How long finished jobs are kept (default DEFAULT_JOB_RETENTION). */
    retention?: JobRetention;
    /** How long an indexed id must miss its BullMQ job before its keys are pruned (default 60 s). */
    pruneGraceMs?: number;
    /** Retries of webhook deliveries this service queues (cancelled queued jobs). */
    webhooks?: WebhookRetry;
    /**
     * BullMQ's own connection, closed by this service (default: `redis`). BullMQ defines its 52 Lua scripts on the
     * connection it is given, and an auto-pipelining connection copies every defined script onto each batch it
     * sends (ioredis's Pipeline constructor): on the API's connection every request's reads paid for them.
     */
    queueRedis?: Redis;
  }) {
    this.pruneGraceMs = options.pruneGraceMs ?? PRUNE_GRACE_MS;
    this.redis = options.redis;
    this.retention = options.retention ?? DEFAULT_JOB_RETENTION;
    this.prefix = options.prefix;
    this.keys = jobKeys(options.prefix);
    this.ownsConnection = options.queueRedis !== undefined;
    this.connection = options.queueRedis ?? options.redis;
    // Its webhook queue is BullMQ's too: on BullMQ's connection.
    this.outcomes = new JobOutcomes(this.connection, options.prefix, options.webhooks);
    this.queues = Object.fromEntries(
      JOB_TYPES.map((type) => {
        const queue = new Queue(QUEUE_NAMES[type], {
          connection: this.connection,
          prefix: options.prefix,
          defaultJobOptions: jobOptions(this.retention),
        });
        // BullMQ re-emits connection failures (e.g. the connection closing while a queue is still
        // initialising) as 'error'; an EventEmitter 'error' with no listener becomes an unhandled rejection.
        queue.on('error', (error) => options.onError?.(error));
        return [type, queue];
      }),
    ) as Record<JobType, Queue>;
  }

  /** The same service (queues, connection) seen as `project`: what a request of that project works with. */
  forProject(project: string): JobService {
    if (project === this.project) return this;
    const view = Object.create(this) as JobService;
    Object.defineProperty(view, 'project', { value: project, enumerable: true });
    return view;
  }

  /** The project a job belongs to (jobs without an entry are the default project's). */
  private async ownerOf(id: string): Promise<string> {
    return (await this.redis.hget(this.keys.projects, id)) ?? DEFAULT_JOB_PROJECT;
  }

  queue(type: JobType): Queue {
    return this.queues[type];
  }

  private eventHub: JobEventHub | undefined;
  private webhooks: Queue | undefined;

  /** Live and past events of jobs (GET /v1/jobs/{id}/events); its stream readers start on first use. */
  get events(): JobEventHub {
    this.eventHub ??= new JobEventHub(this.redis, this.prefix);
    return this.eventHub;
  }

  /** The webhook delivery queue, for the dashboard and the queue depth metrics. */
  webhookQueue(): Queue {
    this.webhooks ??= new Queue(WEBHOOK_QUEUE, { connection: this.connection, prefix: this.prefix });
    return this.webhooks;
  }

  async enqueueMerge(payload: MergeJobPayload, options: SubmitOptions = {}): Promise<JobView> {
    return (await this.submit('merge', payload, options)).job;
  }

  /**
   * Submits a job; with an idempotency key, the same key and body return the first job
   * (`created: false`), and the same key with another body throws IdempotencyKeyReuseError.
   */
  async submit(
    type: JobType,
    payload:
      | MergeJobPayload
      | FinetuneJobPayload
      | EvaluateJobPayload
      | AnalyzeJobPayload
      | Record<string, unknown>,
    options: SubmitOptions = {},
  ): Promise<{ job: JobView; created: boolean }> {
    const jobId = `job_${randomUUID()}`;
    if (options.idempotencyKey !== undefined) {
      const bodyHash = options.bodyHash ?? hashBody({ type, payload });
      const key = this.keys.idempotency(this.project, options.idempotencyKey);
      const claimed = await this.redis.set(
        key,
        JSON.stringify({ jobId, bodyHash }),
        'EX',
        FLAG_TTL_SECONDS,
        'NX',
      );
      if (claimed !== 'OK') {
        const previous = JSON.parse((await this.redis.get(key)) ?? '{}') as {
          jobId?: string;
          bodyHash?: string;
        };
        if (previous.bodyHash !== bodyHash || !previous.jobId) {
          throw new IdempotencyKeyReuseError(options.idempotencyKey, previous.jobId ?? 'unknown');
        }
        const existing = await this.waitForJob(previous.jobId);
        if (existing) return { job: existing, created: false };
        // The first submission claimed the key but never got its job in: take the key over.
        await this.redis.set(key, JSON.stringify({ jobId, bodyHash }), 'EX', FLAG_TTL_SECONDS);
      }
    }
    // The project rides in the job's data (and each child's), so the worker writes under it.
    const owned = { ...payload, project: this.project };
    const children = options.children?.map((child) => ({ ...child, project: this.project }));
    return { job: await this.add(type, jobId, owned, children), created: true };
  }

  /** The child job ids of a job submitted with children, in order. */
  static childId(parentId: string, index: number): string {
    return `${parentId}-p${index}`;
  }

  private async add(type: JobType, jobId: string, payload: object, children?: object[]): Promise<JobView> {
    const ids = [jobId, ...(children ?? []).map((_, i) => JobService.childId(jobId, i))];
    // Children first in the index, so listings (newest first) show the parent above its points.
    for (const id of [...ids.slice(1), jobId]) {
      const sequence = await this.redis.incr(this.keys.sequence);
      const multi = this.redis
        .multi()
        .hset(this.keys.types, id, type)
        .zadd(this.keys.index(this.project), sequence, id)
        .zadd(this.keys.typeIndex(this.project, type), sequence, id);
      if (this.project !== DEFAULT_JOB_PROJECT) multi.hset(this.keys.projects, id, this.project);
      await multi.exec();
    }
    try {
      if (!children) {
        const job = await this.queues[type].add(type, payload, { jobId });
        return toJobView(type, job, 'waiting', null, false);
      }
      this.lazy.flows ??= new FlowProducer({ connection: this.connection, prefix: this.prefix });
      const queueName = QUEUE_NAMES[type];
      const node = await this.lazy.flows.add({
        name: type,
        queueName,
        data: payload,
        opts: { ...jobOptions(this.retention), jobId },
        children: children.map((data, i) => ({
          name: type,
          queueName,
          data,
          opts: { ...jobOptions(this.retention), jobId: ids[i + 1], failParentOnFailure: true },
        })),
      });
      return toJobView(type, node.job, 'waiting-children', null, false);
    } catch (err) {
      for (const id of ids) await this.forget(type, id).catch(() => undefined);
      throw err;
    }
  }

  private async forget(type: JobType, jobId: string): Promise<void> {
    await this.redis
      .multi()
      .hdel(this.keys.types, jobId)
      .hdel(this.keys.projects, jobId)
      .zrem(this.keys.index(this.project), jobId)
      .zrem(this.keys.typeIndex(this.project, type), jobId)
      .exec();
  }

  /** A concurrent submission with the same key may still be adding its job: give it a moment. */
  private async waitForJob(jobId: string): Promise<JobView | null> {
    for (let attempt = 0; attempt < 20; attempt++) {
      const view = await this.get(jobId);
      if (view) return view;
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    return null;
  }

  /** The job, or null when there is none or it belongs to another project. */
  async get(id: string): Promise<JobView | null> {
    const type = await this.typeOf(id);
    return type ? this.viewOf(type, id) : null;
  }

  /**
   * The job's type when it exists and is this project's. Known (read before), it costs no round trip, so the view
   * of a polled job is one command (a dashboard polling a job, a CI pipeline waiting on one).
   */
  private async typeOf(id: string): Promise<JobType | null> {
    const identity = this.identities.get(id) ?? (await this.readIdentity(id));
    return identity?.owner === this.project ? identity.type : null;
  }

  /**
   * A job's type and project, read from our index and remembered: they never change and ids are never reused,
   * so later reads skip them. Null for an id that is not a job of ours.
   */
  private async readIdentity(id: string): Promise<JobIdentity | null> {
    const [type, owner] = await Promise.all([this.redis.hget(this.keys.types, id), this.ownerOf(id)]);
    if (!isOwnType(type)) return null;
    this.identities.set(id, { type, owner });
    // Oldest first out: a Map iterates in insertion order.
    if (this.identities.size > KNOWN_JOBS)
      this.identities.delete(this.identities.keys().next().value as string);
    return { type, owner };
  }

  private async viewOf(type: JobType, id: string): Promise<JobView | null> {
    const read = await readJobSnapshot(this.redis, this.queues[type], id, {
      cancelled: this.keys.cancelled(id),
      error: this.keys.error(id),
      cancel: this.keys.cancel(id),
    });
    // A job cancelled while queued left BullMQ: its record is its view.
    if (read.cancelled !== null) return (JSON.parse(read.cancelled) as CancelledRecord).view;
    if (!read.job) return null;
    const { job, state, recordedError, cancelRequested } = read;
    const view = toJobView(
      type,
      job,
      state,
      recordedError ? (JSON.parse(recordedError) as NonNullable<JobView['error']>) : null,
      cancelRequested,
    );
    if (state === 'waiting-children') await this.showSearchProgress(view, job);
    // A search cancelled while its points ran fails through its points (each stops on the parent's flag).
    if (view.state === 'failed' && cancelRequested && (job.data as Partial<MergeJobPayload>)?.search) {
      view.state = 'cancelled';
      view.error = null;
    }
    return view;
  }

  /**
   * A search parent waits in BullMQ's `waiting-children` while its points run: once one has started it is
   * active for the user, with the points done, of all, and the best so far (what its children recorded).
   */
  private async showSearchProgress(view: JobView, job: Job): Promise<void> {
    const grid = (job.data as Partial<MergeJobPayload> | undefined)?.search?.grid;
    if (!grid) return;
    const total = Object.values(grid).reduce((n, values) => n * values.length, 1);
    const search = await readSearchProgress(this.redis, this.prefix, view.id, total);
    if (!search) return;
    view.state = 'active';
    view.progress = search.progress as unknown as Record<string, unknown>;
    view.startedAt = search.startedAt;
    if (await this.redis.exists(this.keys.cancel(view.id))) view.cancelRequested = true;
  }

  /** Newest first. The cursor is the position after the last item, so new jobs never shift pages. */
  async list(query: {
    state?: JobState;
    type?: JobType;
    limit: number;
    cursor?: string;
  }): Promise<{ items: JobView[]; nextCursor: string | null }> {
    const limit = Math.max(1, Math.min(query.limit, 1000));
    const indexKey = query.type
      ? this.keys.typeIndex(this.project, query.type)
      : this.keys.index(this.project);
    let below = query.cursor ? decodeCursor(query.cursor) : Number.POSITIVE_INFINITY;
    const items: JobView[] = [];
    const sequences: number[] = [];
    const batch = Math.max(limit * 2, 50);
    for (;;) {
      const max = Number.isFinite(below) ? `(${below}` : '+inf';
      const page = await this.redis.zrevrangebyscore(indexKey, max, '-inf', 'WITHSCORES', 'LIMIT', 0, batch);
      if (page.length === 0) break;
      for (let i = 0; i < page.length; i += 2) {
        const id = page[i];
        const sequence = Number(page[i + 1]);
        below = sequence;
        const view = await this.get(id);
        if (!view) await this.pruneRemoved(id);
        if (!view || (query.state && view.state !== query.state)) continue;
        items.push(view);
        sequences.push(sequence);
        if (items.length > limit) break;
      }
      if (items.length > limit || page.length < batch * 2) break;
    }
    if (items.length > limit) {
      items.length = limit;
      return { items, nextCursor: encodeCursor(sequences[limit - 1]) };
    }
    return { items, nextCursor: null };
  }

  /**
   * Our own keys of a job BullMQ's retention removed (index entries, type, recorded error). A job is
   * indexed just before BullMQ has it, so an id is dropped only when it is still missing a minute
   * after it was first seen missing (a mark with that time).
   */
  private async pruneRemoved(id: string): Promise<void> {
    const mark = this.keys.gone(id);
    if ((await this.redis.set(mark, String(Date.now()), 'EX', 3600, 'NX')) === 'OK') return;
    const firstSeen = Number(await this.redis.get(mark));
    if (!(Date.now() - firstSeen >= this.pruneGraceMs)) return;
    const type = await this.redis.hget(this.keys.types, id);
    const multi = this.redis
      .multi()
      .hdel(this.keys.types, id)
      .hdel(this.keys.projects, id)
      .zrem(this.keys.index(this.project), id)
      .del(this.keys.error(id), this.keys.cancel(id), mark);
    if (type) multi.zrem(this.keys.typeIndex(this.project, type), id);
    await multi.exec();
  }

  /**
   * A queued job is taken off its queue at once and kept as a `cancelled` record. An active job
   * gets a flag its processor polls between tensors; it then fails with CANCELLED_REASON and
   * reads as `cancelled`. The returned view of an active job has `cancelRequested: true`.
   */
  async cancel(id: string): Promise<JobView> {
    const type = await this.typeOf(id);
    const view = type ? await this.viewOf(type, id) : null;
    if (!type || !view) throw new JobNotFoundError(id);
    if (view.state === 'completed' || view.state === 'failed' || view.state === 'cancelled') {
      throw new JobNotCancellableError(id, view.state);
    }
    // The flag first: should the job turn active meanwhile, its processor sees it at start.
    await this.redis.set(this.keys.cancel(id), '1', 'EX', FLAG_TTL_SECONDS);
    const job = await Job.fromId(this.queues[type], id);
    if (job && view.state === 'queued') {
      try {
        await job.remove();
        const cancelled: JobView = {
          ...view,
          state: 'cancelled',
          progress: view.progress,
          finishedAt: new Date().toISOString(),
        };
        // Kept as long as a failed job would be (BullMQ removes its own records, not ours).
        await this.redis.set(
          this.keys.cancelled(id),
          JSON.stringify({ view: cancelled }),
          'EX',
          Math.max(1, this.retention.failed.age),
        );
        await this.outcomes.record(type, job, 'cancelled');
        return cancelled;
      } catch {
        // Locked: a worker took it between our read and the removal; the flag stops it.
      }
    }
    const after = await this.viewOf(type, id);
    if (!after) throw new JobNotFoundError(id);
    return after;
  }

  /** The callback_url a job was submitted with (null: none, or its record is gone). */
  async callbackUrlOf(id: string): Promise<string | null> {
    const type = (await this.redis.hget(this.keys.types, id)) as JobType | null;
    if (!type || !(type in QUEUE_NAMES)) return null;
    const job = await Job.fromId(this.queues[type], id);
    const url = (job?.data as { callbackUrl?: unknown } | undefined)?.callbackUrl;
    return typeof url === 'string' ? url : null;
  }

  /** Ids of queued or active jobs whose payload.inputs holds the artifact (deletion must wait). */
  async jobsUsingArtifact(artifactId: string): Promise<string[]> {
    const ids: string[] = [];
    const pageSize = 200;
    for (const type of JOB_TYPES) {
      for (const state of PENDING_STATES) {
        for (let start = 0; ; start += pageSize) {
          const jobs = await this.queues[type].getJobs([state], start, start + pageSize - 1, true);
          for (const job of jobs) {
            const inputs = (job?.data as { inputs?: unknown } | undefined)?.inputs;
            if (job?.id && Array.isArray(inputs) && inputs.includes(artifactId)) ids.push(job.id);
          }
          if (jobs.length < pageSize) break;
        }
      }
    }
    return [...new Set(ids)];
  }

  /** Closes the queues and queueRedis; the shared Redis connection belongs to the caller. */
  async close(): Promise<void> {
    const queues = Object.values(this.queues);
    // A queue closed while its connection is still initialising loses its error listener, and the
    // init's later failure ("Connection is closed") becomes an unhandled rejection inside BullMQ. Let
    // the init settle first; a Redis that is down gets a bounded wait, not a hang.
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([
      Promise.allSettled(queues.map((queue) => queue.waitUntilReady())),
      new Promise((resolve) => {
        timer = setTimeout(resolve, 2000);
      }),
    ]);
    clearTimeout(timer);
    await Promise.all(queues.map((queue) => queue.close()));
    await this.lazy.flows?.close();
    await this.outcomes.close();
    await this.eventHub?.close();
    await this.webhooks?.close();
    // Last: the webhook queues above are on it too.
    if (this.ownsConnection) this.connection.disconnect();
  }
}
