// npm run bench:api — HTTP latency and throughput of the API on loopback with autocannon, 100 connections:
// GET /v1/jobs/{id}, GET /v1/models and POST /v1/merges (a task_arithmetic recipe over four stored models,
// validated as for real; no worker runs, so the jobs stay queued). The API runs as `lorafuse serve` in a child
// process on a private redis-server, so the load generator does not share its event loop. Each route is
// measured twice: open throttle (the most the API serves) and at a fixed rate (the targets: p99 < 25 ms
// for the GETs at 2,000 req/s, p99 < 60 ms for POST /v1/merges at 500 req/s, zero errors).
// Options: --duration S (per run, default 10), --connections N (100), --get-rate N (2000), --post-rate N (500),
// --api-key KEY (the bootstrap key serve starts with, sent as Authorization: Bearer; default: a fresh random one;
// also LORAFUSE_BENCH_API_KEY).
import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import autocannon from 'autocannon';
import { freePort, startEmbeddedRedis } from '../../src/cli/embedded-redis.ts';

const { values } = parseArgs({
  options: {
    duration: { type: 'string', default: '10' },
    connections: { type: 'string', default: '100' },
    'get-rate': { type: 'string', default: '2000' },
    'post-rate': { type: 'string', default: '500' },
    'api-key': { type: 'string', default: process.env.LORAFUSE_BENCH_API_KEY ?? '' },
  },
});
const duration = Number(values.duration);
const connections = Number(values.connections);
// `serve` has API keys on: the bench starts it with a fresh bootstrap key (admin of the default project) unless one
// is given, so every request pays for authentication as a client's would.
const apiKey = values['api-key'] || `bench-${randomBytes(32).toString('hex')}`;
const auth: Record<string, string> = { authorization: `Bearer ${apiKey}` };
const GOLDEN = path.resolve(import.meta.dirname, '../../test/fixtures/golden/mergekit_task_arithmetic');

async function waitReady(base: string, child: ChildProcess): Promise<void> {
  const deadline = Date.now() + 120_000;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`lorafuse serve exited with ${child.exitCode}`);
    try {
      if ((await fetch(`${base}/readyz`)).ok) return;
    } catch {
      // Not listening yet.
    }
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
  throw new Error('lorafuse serve did not get ready within 2 minutes');
}

async function upload(base: string, name: string): Promise<string> {
  const form = new FormData();
  form.append(
    'model.safetensors',
    new Blob([readFileSync(path.join(GOLDEN, `${name}.safetensors`))]),
    'model.safetensors',
  );
  const response = await fetch(`${base}/v1/models`, { method: 'POST', body: form, headers: auth });
  if (response.status !== 201) throw new Error(`upload ${name}: ${response.status} ${await response.text()}`);
  return ((await response.json()) as { id: string }).id;
}

interface Row {
  route: string;
  mode: string;
  requestsPerSecond: number;
  p50: number;
  p90: number;
  p99: number;
  max: number;
  errors: number;
  non2xx: number;
}

async function measure(
  route: string,
  mode: string,
  options: { url: string; method?: 'GET' | 'POST'; body?: string; rate?: number },
): Promise<Row> {
  const result = await autocannon({
    url: options.url,
    method: options.method ?? 'GET',
    body: options.body,
    headers: { ...auth, ...(options.body ? { 'content-type': 'application/json' } : {}) },
    connections,
    duration,
    overallRate: options.rate,
  });
  return {
    route,
    mode,
    requestsPerSecond: result.requests.average,
    p50: result.latency.p50,
    p90: result.latency.p90,
    p99: result.latency.p99,
    max: result.latency.max,
    errors: result.errors + result.timeouts,
    non2xx: result.non2xx,
  };
}

const work = mkdtempSync(path.join(os.tmpdir(), 'lorafuse-bench-api-'));
const redis = await startEmbeddedRedis({ dir: path.join(work, 'redis'), appendOnly: false });
const port = await freePort();
const base = `http://127.0.0.1:${port}`;
const server = spawn(
  process.execPath,
  [path.resolve(import.meta.dirname, '../../bin/lorafuse.js'), 'serve'],
  {
    env: {
      ...process.env,
      REDIS_URL: redis.url,
      PORT: String(port),
      HOST: '127.0.0.1',
      LORAFUSE_DATA_DIR: path.join(work, 'data'),
      LOG_LEVEL: 'warn',
      LORAFUSE_BOOTSTRAP_KEY: apiKey,
      // The per-key limiter stays on (its Redis round trip is part of every request) but far above the rates
      // measured here, which one key sends.
      LORAFUSE_RATE_LIMIT: '10000000',
    },
    stdio: ['ignore', 'inherit', 'inherit'],
  },
);
try {
  await waitReady(base, server);
  const ids: Record<string, string> = {};
  for (const name of ['base', 'm0', 'm1', 'm2']) ids[name] = await upload(base, name);
  const recipe = JSON.stringify({
    merge_method: 'task_arithmetic',
    base_model: ids.base,
    models: ['m0', 'm1', 'm2'].map((name) => ({ model: ids[name], parameters: { weight: 1.0 } })),
    parameters: { lambda: 0.7 },
    dtype: 'float32',
  });
  const submitted = await fetch(`${base}/v1/merges`, {
    method: 'POST',
    body: recipe,
    headers: { ...auth, 'content-type': 'application/json' },
  });
  const jobId = ((await submitted.json()) as { id: string }).id;
  const getRate = Number(values['get-rate']);
  const postRate = Number(values['post-rate']);
  const load = os.loadavg().map((value) => value.toFixed(1));
  console.log(
    `lorafuse API on loopback: ${connections} connections, ${duration} s per run, ${os.cpus().length} cores, load ${load.join(' ')}${values['api-key'] ? ', authenticated with the given key' : ', authenticated with a fresh bootstrap key'}`,
  );
  const rows: Row[] = [];
  for (const [route, url] of [
    ['GET /v1/jobs/{id}', `${base}/v1/jobs/${jobId}`],
    ['GET /v1/models', `${base}/v1/models`],
  ] as const) {
    rows.push(await measure(route, 'open', { url }));
    rows.push(await measure(route, `${getRate} req/s`, { url, rate: getRate }));
  }
  rows.push(
    await measure('POST /v1/merges', 'open', { url: `${base}/v1/merges`, method: 'POST', body: recipe }),
  );
  rows.push(
    await measure('POST /v1/merges', `${postRate} req/s`, {
      url: `${base}/v1/merges`,
      method: 'POST',
      body: recipe,
      rate: postRate,
    }),
  );
  console.log('| route | load | req/s | p50 ms | p90 ms | p99 ms | max ms | errors | non-2xx |');
  console.log('|---|---|---|---|---|---|---|---|---|');
  for (const row of rows) {
    console.log(
      `| ${row.route} | ${row.mode} | ${row.requestsPerSecond.toFixed(0)} | ${row.p50} | ${row.p90} | ${row.p99} | ${row.max} | ${row.errors} | ${row.non2xx} |`,
    );
  }
  const verdict = (row: Row, p99: number) =>
    `${row.route} at ${row.mode}: p99 ${row.p99} ms (target < ${p99} ms), ${row.errors + row.non2xx} errors: ${row.p99 < p99 && row.errors + row.non2xx === 0 ? 'met' : 'NOT met'}`;
  for (const row of rows.filter((r) => r.mode !== 'open'))
    console.log(verdict(row, row.route.startsWith('POST') ? 60 : 25));
} finally {
  server.kill('SIGTERM');
  await new Promise((resolve) => server.once('exit', resolve));
  await redis.stop();
  rmSync(work, { recursive: true, force: true });
}
