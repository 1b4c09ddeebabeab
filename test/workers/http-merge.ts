// What the merge-over-HTTP tests share: the golden task_arithmetic inputs uploaded through the real
// app, a job awaited through GET /v1/jobs, downloads as bytes, and the in-process worker settings.
import path from 'node:path';
import supertest from 'supertest';
import type { LorafuseApp } from '../../src/api/index.ts';
import type { JobView } from '../../src/queue/index.ts';
import { GOLDEN_TASK_ARITHMETIC, waitFor } from './fixtures.ts';

/** In-process workers of these tests: locks long enough that no job is ever taken as stalled. */
export const IN_PROCESS_WORKER_SETTINGS = {
  lockDurationMs: 30_000,
  stalledIntervalMs: 30_000,
  shutdownGraceMs: 10_000,
};

/** Uploads the golden case's `name` (base, m0, m1, m2) as a model; returns its id. */
export async function uploadGolden(app: LorafuseApp, name: string): Promise<string> {
  const response = await supertest(app.server)
    .post('/v1/models')
    .attach(
      'model.safetensors',
      path.join(GOLDEN_TASK_ARITHMETIC, `${name}.safetensors`),
      'model.safetensors',
    )
    .expect(201);
  return response.body.id as string;
}

/** The job's view once it completed or failed, read over HTTP. */
export function finishedOverHttp(app: LorafuseApp, jobId: string): Promise<JobView> {
  return waitFor<JobView>(`job ${jobId} to finish`, async () => {
    const view = (await supertest(app.server).get(`/v1/jobs/${jobId}`).expect(200)).body as JobView;
    return view.state === 'completed' || view.state === 'failed' ? view : null;
  });
}

/** GET `url` as raw bytes, expecting `status` (206 with a `range`). */
export async function downloadBytes(
  app: LorafuseApp,
  url: string,
  options: { range?: string; status?: number } = {},
): Promise<Buffer> {
  let request = supertest(app.server).get(url);
  if (options.range) request = request.set('range', options.range);
  const response = await request
    .buffer(true)
    .parse((res, callback) => {
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.on('end', () => callback(null, Buffer.concat(chunks)));
    })
    .expect(options.status ?? 200);
  return response.body as Buffer;
}
