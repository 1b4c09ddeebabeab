// GET /v1/jobs/:id/events: Server-Sent Events of one job's state changes and progress, from BullMQ's event
// stream. Each event's id is its stream entry id, so a client that reconnects with Last-Event-ID gets exactly
// the events it missed (or, when the stream was trimmed past that id, the job's current state). The stream
// ends after the job's final state; a reconnect after that answers 204, which stops EventSource.
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { ServerResponse } from 'node:http';
import { Type } from 'typebox';
import {
  compareStreamIds,
  isStreamId,
  type JobStreamEvent,
  type JobView,
  mapState,
} from '../../../queue/index.ts';
import { ApiProblem } from '../../errors.ts';
import { problemResponses } from '../../schemas.ts';
import { JobParams } from './schemas.ts';

/** A comment line this often keeps proxies and load balancers from closing an idle stream. */
const KEEPALIVE_MS = 15_000;
/** How long EventSource waits before reconnecting. */
const RETRY_MS = 2_000;

const FINAL_STATES = new Set(['completed', 'failed', 'cancelled']);

const EventHeaders = Type.Object({
  'last-event-id': Type.Optional(
    Type.String({ maxLength: 64, description: 'The id of the last event received.' }),
  ),
});

function frame(event: string, data: unknown, id?: string): string {
  const idLine = id ? `id: ${id}\n` : '';
  return `${idLine}event: ${event}\ndata: ${JSON.stringify(data)}\n\n`;
}

const jobEventRoutes: FastifyPluginAsyncTypebox = async (app) => {
  /** Open streams, ended before the server closes (they would otherwise hold it open). */
  const open = new Set<ServerResponse>();
  app.addHook('preClose', async () => {
    for (const response of open) response.end();
  });

  app.get(
    '/jobs/:id/events',
    {
      schema: {
        tags: ['jobs'],
        summary: "Server-Sent Events of the job's state changes and progress",
        description:
          "text/event-stream. `event: state` carries `{id, state, ...}`: the first event and the final one carry the whole job (the GET /v1/jobs/{id} body), the others `{id, state}` (`retryInMs` when a failed attempt waits for its retry). `event: progress` carries the job's progress object. Every event has an `id`; reconnecting with `Last-Event-ID` replays the events missed since (when they are no longer held, the job's current state is sent instead). The stream ends after the final state (completed, failed or cancelled); a reconnect after it answers 204.",
        params: JobParams,
        headers: EventHeaders,
        produces: ['text/event-stream'],
        response: {
          200: Type.String({ description: 'An event stream (text/event-stream).' }),
          204: Type.Null({ description: 'The job had finished and every event was already received.' }),
          ...problemResponses(404),
        },
      },
    },
    async (request, reply) => {
      const { id } = request.params;
      const job = await request.jobs.get(id);
      if (!job) throw new ApiProblem('job-not-found', `no job with id ${id}`, { id });
      const sent = request.headers['last-event-id'];
      const resumeFrom = typeof sent === 'string' && isStreamId(sent.trim()) ? sent.trim() : undefined;
      const hub = app.jobs.events;

      // Subscribe before reading the past, so nothing falls between the two; live events wait in `early`.
      const early: JobStreamEvent[] = [];
      let deliver: ((event: JobStreamEvent) => void) | null = null;
      const unsubscribe = await hub.subscribe(job.type, id, (event) =>
        deliver ? deliver(event) : early.push(event),
      );
      let replay: JobStreamEvent[] = [];
      let snapshotNeeded = resumeFrom === undefined;
      if (resumeFrom !== undefined) {
        const past = await hub.since(job.type, id, resumeFrom);
        replay = past.events;
        snapshotNeeded = !past.complete;
        if (past.complete && replay.length === 0 && FINAL_STATES.has(job.state)) {
          unsubscribe();
          return reply.code(204).send(null);
        }
      }
      const snapshotId = snapshotNeeded ? await hub.lastId(job.type) : undefined;
      const snapshot = snapshotNeeded ? ((await request.jobs.get(id)) ?? job) : undefined;

      reply.hijack();
      const raw = reply.raw;
      raw.writeHead(200, {
        'content-type': 'text/event-stream; charset=utf-8',
        'cache-control': 'no-cache, no-transform',
        connection: 'keep-alive',
        'x-accel-buffering': 'no',
        'x-request-id': String(request.id),
      });
      raw.write(`retry: ${RETRY_MS}\n\n`);
      open.add(raw);
      let cursor = resumeFrom ?? '0-0';
      let finished = false;
      const keepalive = setInterval(() => raw.write(': keepalive\n\n'), KEEPALIVE_MS);
      const end = () => {
        if (finished) return;
        finished = true;
        clearInterval(keepalive);
        unsubscribe();
        open.delete(raw);
        raw.end();
      };
      // The response's close, not the request's: a GET's request stream closes as soon as it has been read.
      raw.on('close', end);

      const sendState = (view: JobView, eventId: string) => {
        raw.write(frame('state', view, eventId));
        if (FINAL_STATES.has(view.state)) end();
      };

      /** One stream event as SSE; final states are read back as the whole job (error kind, result). */
      const handle = async (event: JobStreamEvent) => {
        if (finished || compareStreamIds(event.id, cursor) <= 0) return;
        cursor = event.id;
        switch (event.event) {
          case 'progress':
            raw.write(frame('progress', event.fields.data ?? null, event.id));
            return;
          case 'active':
            raw.write(frame('state', { id, state: 'active' }, event.id));
            return;
          case 'waiting':
          case 'waiting-children':
            raw.write(frame('state', { id, state: 'queued' }, event.id));
            return;
          case 'delayed':
            raw.write(
              frame(
                'state',
                { id, state: 'queued', retryInMs: Number(event.fields.delay) || null },
                event.id,
              ),
            );
            return;
          case 'completed':
          case 'failed':
          case 'removed': {
            const view = await request.jobs.get(id);
            if (view && FINAL_STATES.has(view.state)) return sendState(view, event.id);
            // Removed by retention, or a failed attempt that is being retried: the stream says what it can.
            if (event.event !== 'removed') {
              const state = mapState(event.event, event.fields.failedReason as string | undefined);
              raw.write(frame('state', { id, state }, event.id));
            }
            return;
          }
        }
      };

      let chain: Promise<void> = Promise.resolve();
      const enqueue = (event: JobStreamEvent) => {
        chain = chain.then(() => handle(event)).catch(() => end());
      };
      if (snapshot && snapshotId) {
        cursor = snapshotId;
        sendState(snapshot, snapshotId);
      }
      for (const event of replay) enqueue(event);
      for (const event of early) enqueue(event);
      deliver = enqueue;
      await chain;
    },
  );
};

export default jobEventRoutes;
