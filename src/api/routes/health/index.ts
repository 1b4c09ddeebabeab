// /healthz: the process answers. /readyz: Redis answers PING, the local data directory is writable
// and the blob store (the data directory or the S3 bucket) answers; its 503 names the dependency that is
// down (redis: unavailable; dataDir: full or not writable; blobStore: unavailable).
import { randomUUID } from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from 'typebox';
import { ApiProblem } from '../../errors.ts';
import { problemResponses } from '../../schemas.ts';

const READY_TIMEOUT_MS = 2000;

function withTimeout<T>(promise: Promise<T>, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} timed out`)), READY_TIMEOUT_MS);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

const Status = Type.Object({ status: Type.Literal('ok') });
const Readiness = Type.Object({
  status: Type.Literal('ok'),
  checks: Type.Object({ redis: Type.String(), dataDir: Type.String(), blobStore: Type.String() }),
});

const healthRoutes: FastifyPluginAsyncTypebox = async (app) => {
  app.get(
    '/healthz',
    { schema: { tags: ['health'], summary: 'The process is up', response: { 200: Status } } },
    async () => ({ status: 'ok' as const }),
  );

  app.get(
    '/readyz',
    {
      schema: {
        tags: ['health'],
        summary: 'Redis answers, the data directory is writable and the blob store answers',
        response: { 200: Readiness, ...problemResponses(503) },
      },
    },
    async (request) => {
      const checks = { redis: 'ok', dataDir: 'ok', blobStore: 'ok' };
      try {
        await withTimeout(app.redis.ping(), 'PING');
      } catch (error) {
        request.log.warn({ err: error }, 'readiness: redis');
        checks.redis = 'unavailable';
      }
      const probe = path.join(app.store.scratch.tmpDir, `ready-${randomUUID()}`);
      try {
        await withTimeout(fs.writeFile(probe, 'ok'), 'write');
      } catch (error) {
        request.log.warn({ err: error }, 'readiness: data directory');
        const code = (error as NodeJS.ErrnoException).code;
        checks.dataDir = code === 'ENOSPC' || code === 'EDQUOT' ? 'full' : 'not writable';
      } finally {
        await fs.rm(probe, { force: true }).catch(() => undefined);
      }
      try {
        await withTimeout(app.store.blobs.probe(), 'blob store');
      } catch (error) {
        request.log.warn({ err: error }, 'readiness: blob store');
        checks.blobStore = 'unavailable';
      }
      if (checks.redis !== 'ok' || checks.dataDir !== 'ok' || checks.blobStore !== 'ok') {
        throw new ApiProblem('not-ready', 'a dependency is unavailable', { checks });
      }
      return { status: 'ok' as const, checks };
    },
  );
};

export default healthRoutes;
