// Job events for Server-Sent Events: BullMQ's per-queue event stream, read by one QueueEvents per queue and
// shared by every subscriber of this process, plus the stream's past entries for a client that reconnects with
// Last-Event-ID (the stream entry id is the SSE event id). The stream is capped by BullMQ (about 10,000 entries
// per queue): an id older than its first entry cannot be replayed, and the caller sends a snapshot instead.
import { QueueEvents } from 'bullmq';
import type { Redis } from 'ioredis';
import { type JobType, QUEUE_NAMES } from './contract.ts';

/** One entry of a queue's event stream that concerns one job. */
export interface JobStreamEvent {
  /** The stream entry id (`<ms>-<seq>`): the SSE event id. */
  id: string;
  /** BullMQ's event name: waiting, active, progress, completed, failed, delayed, removed, ... */
  event: string;
  jobId: string;
  /** The entry's other fields; `data` (progress) and `returnvalue` (completed) parsed from JSON. */
  fields: Record<string, unknown>;
}

type Listener = (event: JobStreamEvent) => void;

/** The events a job's watcher cares about (BullMQ also streams added, drained, deduplicated, ...). */
const WATCHED = [
  'waiting',
  'waiting-children',
  'delayed',
  'active',
  'progress',
  'completed',
  'failed',
  'removed',
];

const STREAM_ID = /^(\d{1,16})-(\d{1,16})$/;

export function isStreamId(value: string): boolean {
  return STREAM_ID.test(value);
}

/** Orders two stream ids (negative: a before b). */
export function compareStreamIds(a: string, b: string): number {
  const [am, as] = a.split('-').map(BigInt);
  const [bm, bs] = b.split('-').map(BigInt);
  if (am !== bm) return am < bm ? -1 : 1;
  return as === bs ? 0 : as < bs ? -1 : 1;
}

function parseEntry(id: string, flat: string[]): JobStreamEvent | null {
  const fields: Record<string, unknown> = {};
  for (let i = 0; i + 1 < flat.length; i += 2) fields[flat[i]] = flat[i + 1];
  const { event, jobId, ...rest } = fields as { event?: string; jobId?: string } & Record<string, unknown>;
  if (typeof event !== 'string' || typeof jobId !== 'string') return null;
  for (const key of ['data', 'returnvalue']) {
    if (typeof rest[key] === 'string') {
      try {
        rest[key] = JSON.parse(rest[key] as string);
      } catch {
        // Left as the string BullMQ wrote.
      }
    }
  }
  return { id, event, jobId, fields: rest };
}

export class JobEventHub {
  private readonly readers = new Map<JobType, Promise<QueueEvents>>();
  private readonly listeners = new Map<string, Set<Listener>>();
  private readonly connections: Redis[] = [];

  constructor(
    private readonly redis: Redis,
    private readonly prefix: string,
  ) {}

  private streamKey(type: JobType): string {
    return `${this.prefix}:${QUEUE_NAMES[type]}:events`;
  }

  private reader(type: JobType): Promise<QueueEvents> {
    let reader = this.readers.get(type);
    if (!reader) {
      reader = (async () => {
        // A connection of its own for the blocking XREAD, which must not hold up the shared one and must wait
        // forever (BullMQ refuses a blocking connection that gives up after a few retries).
        const connection = this.redis.duplicate({ maxRetriesPerRequest: null, enableAutoPipelining: false });
        connection.on('error', () => undefined);
        this.connections.push(connection);
        const events = new QueueEvents(QUEUE_NAMES[type], { connection, prefix: this.prefix });
        events.on('error', () => undefined);
        for (const name of WATCHED) {
          events.on(name as 'waiting', (args: { jobId: string } & Record<string, unknown>, id: string) => {
            const { jobId, ...fields } = args;
            this.dispatch({ id, event: name, jobId, fields });
          });
        }
        await events.waitUntilReady();
        return events;
      })();
      this.readers.set(type, reader);
    }
    return reader;
  }

  private dispatch(event: JobStreamEvent): void {
    for (const listener of this.listeners.get(event.jobId) ?? []) listener(event);
  }

  /** Calls `listener` with each live event of the job until the returned function is called. */
  async subscribe(type: JobType, jobId: string, listener: Listener): Promise<() => void> {
    let set = this.listeners.get(jobId);
    if (!set) {
      set = new Set();
      this.listeners.set(jobId, set);
    }
    set.add(listener);
    await this.reader(type);
    return () => {
      set.delete(listener);
      if (set.size === 0 && this.listeners.get(jobId) === set) this.listeners.delete(jobId);
    };
  }

  /** The newest entry id of the queue's stream ('0-0' when it is empty): a snapshot's event id. */
  async lastId(type: JobType): Promise<string> {
    const last = (await this.redis.xrevrange(this.streamKey(type), '+', '-', 'COUNT', 1)) as Array<
      [string, string[]]
    >;
    return last[0]?.[0] ?? '0-0';
  }

  /**
   * The job's events after `afterId`, oldest first. `complete` is false when the stream no longer reaches back
   * to `afterId` (trimmed): some events may be missing and the caller should send the job's current state.
   */
  async since(
    type: JobType,
    jobId: string,
    afterId: string,
  ): Promise<{ events: JobStreamEvent[]; complete: boolean }> {
    const key = this.streamKey(type);
    const first = (await this.redis.xrange(key, '-', '+', 'COUNT', 1)) as Array<[string, string[]]>;
    const last = await this.lastId(type);
    // Complete only when the stream still holds afterId's neighbourhood, and afterId is not from the future.
    const complete =
      first.length === 0
        ? afterId === '0-0'
        : compareStreamIds(first[0][0], afterId) <= 0 && compareStreamIds(afterId, last) <= 0;
    const events: JobStreamEvent[] = [];
    let cursor = `(${afterId}`;
    for (;;) {
      const page = (await this.redis.xrange(key, cursor, '+', 'COUNT', 1000)) as Array<[string, string[]]>;
      for (const [id, flat] of page) {
        const event = parseEntry(id, flat);
        if (event && event.jobId === jobId && WATCHED.includes(event.event)) events.push(event);
      }
      if (page.length < 1000) break;
      cursor = `(${page[page.length - 1][0]}`;
    }
    return { events, complete };
  }

  async close(): Promise<void> {
    const readers = [...this.readers.values()];
    this.readers.clear();
    this.listeners.clear();
    await Promise.all(readers.map(async (reader) => (await reader.catch(() => null))?.close()));
    for (const connection of this.connections.splice(0)) connection.disconnect();
  }
}
