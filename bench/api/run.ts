// npm run bench:api — HTTP latency and throughput of the API on loopback, 100 connections:
// GET /v1/jobs/{id}, GET /v1/models and POST /v1/merges (a task_arithmetic recipe over four stored models,
// validated as for real; no worker runs, so the jobs stay queued). The API runs as `lorafuse serve` in a child
// process on a private redis-server, so the load generator does not share its event loop. Each route is
// measured twice: open throttle by autocannon (the most the API serves) and at a fixed rate by paced-load.ts (the
// issue's targets: p99 < 25 ms for the GETs at 2,000 req/s, p99 < 60 ms for POST /v1/merges at 500 req/s, zero
// errors).
// Every request carries a project API key (lfk_…, read and write scopes) made through POST /v1/keys, so each pays
// for authentication as a client's would; `--api-key` sends the given bootstrap key instead.
// Options: --duration S (per run, default 10), --connections N (100), --get-rate N (2000), --post-rate N (500),
// --api-key KEY (the bootstrap key serve starts with, sent as Authorization: Bearer on every request; default: a
// fresh bootstrap key that only makes the project key; also LORAFUSE_BENCH_API_KEY), --routes jobs,models,merges
// (which to measure), --modes open,rate, --cpu-prof DIR (V8 CPU profile of the API process, written when it exits),
// --baseline DIR (serve another checkout of lorafuse, with its node_modules, for before/after comparisons),
// --log-level L (the API's LOG_LEVEL, default warn), --warmup S (seconds of load at the route's fixed rate before
// its first measured run, not counted, default 3: a cold API spends its first second compiling, and that second
// alone would be the p99 of a fixed-rate run).
// Each row also says how many Redis commands the API sent per request (INFO commandstats before and after).
// For the fixed rates a second table says where a tail comes from, read off the API's own /metrics before and after
// the run: the share of the route's requests the API itself answered within the target (its request-duration
// histogram, from request received to response sent), its garbage-collection pauses and its event loop's worst
// delay. A p99 over the target while the API answered 99% within it, with no long pause, is time spent outside the
// API's handlers (the kernel, Redis, the generator: all on the same cores).
import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import autocannon from 'autocannon';
import { Redis } from 'ioredis';
import { freePort, startEmbeddedRedis } from '../../src/cli/embedded-redis.ts';
import { pacedLoad, percentile } from './paced-load.ts';

const { values } = parseArgs({
  options: {
    duration: { type: 'string', default: '10' },
    connections: { type: 'string', default: '100' },
    'get-rate': { type: 'string', default: '2000' },
    'post-rate': { type: 'string', default: '500' },
    'api-key': { type: 'string', default: process.env.LORAFUSE_BENCH_API_KEY ?? '' },
    routes: { type: 'string', default: 'jobs,models,merges' },
    modes: { type: 'string', default: 'open,rate' },
    'cpu-prof': { type: 'string' },
    baseline: { type: 'string' },
    'log-level': { type: 'string', default: 'warn' },
    warmup: { type: 'string', default: '3' },
  },
});
const routes = new Set(values.routes.split(','));
const modes = new Set(values.modes.split(','));
const duration = Number(values.duration);
const connections = Number(values.connections);
// `serve` has API keys on: it starts with a bootstrap key (admin of the default project); unless one is given, the
// bench uses it only to make a project key, which every measured request then sends.
const bootstrapKey = values['api-key'] || `bench-${randomBytes(32).toString('hex')}`;
const auth: Record<string, string> = { authorization: `Bearer ${bootstrapKey}` };
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

/** A project key with read and write scopes (what a client or CI pipeline holds). */
async function makeProjectKey(base: string): Promise<string> {
  const response = await fetch(`${base}/v1/keys`, {
    method: 'POST',
    body: JSON.stringify({ name: 'bench-api', scopes: ['read', 'write'] }),
    headers: { ...auth, 'content-type': 'application/json' },
  });
  if (response.status !== 201) throw new Error(`POST /v1/keys: ${response.status} ${await response.text()}`);
  return ((await response.json()) as { key: string }).key;
}

/** Commands Redis has served so far (INFO commandstats), to count what one request costs. */
async function redisCommands(redis: Redis): Promise<number> {
  const info = await redis.info('commandstats');
  let calls = 0;
  for (const match of info.matchAll(/^cmdstat_[^:]+:calls=(\d+)/gm)) calls += Number(match[1]);
  return calls;
}

/** CPU seconds (user + system) a process has used so far, from /proc (Linux); null elsewhere. */
function processCpuSeconds(pid: number | undefined): number | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    // utime and stime (fields 14 and 15 of proc(5)) in clock ticks, 100 per second on Linux.
    return (Number(fields[11]) + Number(fields[12])) / 100;
  } catch {
    return null;
  }
}

/** CPU seconds Redis has used so far (INFO cpu). */
async function redisCpuSeconds(redis: Redis): Promise<number> {
  const info = await redis.info('cpu');
  const field = (name: string) => Number(new RegExp(`^${name}:([0-9.]+)`, 'm').exec(info)?.[1] ?? 0);
  return field('used_cpu_user') + field('used_cpu_sys');
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
  redisPerRequest: number;
  /** CPU time per request of the API process and of Redis, microseconds: comparable on a busy machine. */
  apiCpuUs: number | null;
  redisCpuUs: number;
  /** Fixed rates: p99 of how late the generator itself got to a due request (ms; part of p99, not the API's). */
  generatorLagP99: number | null;
  /** The API's own account of the run (its /metrics), null when it could not be read. */
  api: ApiAccount | null;
}

/** What the API's /metrics says about one run: differences between scrapes before and after it. */
interface ApiAccount {
  /**
   * Requests to the route the API answered within `withinMs` (request received to response sent), of all;
   * `withinMs` is the widest bucket of its histogram within the route's target.
   */
  within: number;
  requests: number;
  withinMs: number;
  /** Total garbage-collection pause, ms, by kind (minor: scavenges; major: mark-compact). */
  gcMinorMs: number;
  gcMajorMs: number;
  /** The event loop's worst delay over the run, ms (prom-client's monitorEventLoopDelay, reset at each scrape). */
  loopDelayMaxMs: number;
}

type MetricSamples = Map<string, number>;

/** Prometheus text -> samples keyed by name and labels as printed. */
async function scrapeMetrics(): Promise<MetricSamples | null> {
  const response = await fetch(`${base}/metrics`, { headers: auth }).catch(() => null);
  if (!response?.ok) return null;
  const samples: MetricSamples = new Map();
  for (const line of (await response.text()).split('\n')) {
    if (line.startsWith('#') || line === '') continue;
    const split = line.lastIndexOf(' ');
    samples.set(line.slice(0, split), Number(line.slice(split + 1)));
  }
  return samples;
}

/** Sum of the samples named `name` whose labels include every one of `labels`. */
function sumOf(samples: MetricSamples, name: string, labels: string[]): number {
  let sum = 0;
  for (const [key, value] of samples) {
    if (key !== name && !key.startsWith(`${name}{`)) continue;
    if (labels.every((label) => key.includes(label))) sum += value;
  }
  return sum;
}

/** `route` as this bench names it ('GET /v1/jobs/{id}'); the API labels it by method and template ('/v1/jobs/:id'). */
function apiAccount(
  before: MetricSamples | null,
  after: MetricSamples | null,
  route: string,
  withinMs: number,
): ApiAccount | null {
  if (!before || !after) return null;
  const delta = (name: string, labels: string[]) => sumOf(after, name, labels) - sumOf(before, name, labels);
  const [method, path] = route.split(' ');
  const routeLabels = [`method="${method}"`, `route="${path.replace(/\{(\w+)\}/g, ':$1')}"`];
  const histogram = 'lorafuse_http_request_duration_seconds';
  const gc = 'lorafuse_api_nodejs_gc_duration_seconds_sum';
  // The histogram's widest bucket that still lies within the target (its bounds are the API's, not the targets).
  let bound = 0;
  for (const key of after.keys()) {
    const le = /le="([0-9.]+)"/.exec(key)?.[1];
    if (key.startsWith(`${histogram}_bucket{`) && le && Number(le) * 1000 <= withinMs)
      bound = Math.max(bound, Number(le));
  }
  return {
    within: delta(`${histogram}_bucket`, [...routeLabels, `le="${bound}"`]),
    requests: delta(`${histogram}_count`, routeLabels),
    withinMs: bound * 1000,
    gcMinorMs: delta(gc, ['kind="minor"']) * 1000,
    gcMajorMs: delta(gc, ['kind="major"']) * 1000,
    loopDelayMaxMs: sumOf(after, 'lorafuse_api_nodejs_eventloop_lag_max_seconds', []) * 1000,
  };
}

type LoadFigures = Pick<
  Row,
  'requestsPerSecond' | 'p50' | 'p90' | 'p99' | 'max' | 'errors' | 'non2xx' | 'generatorLagP99'
> & {
  requests: number;
};
interface LoadOptions {
  url: string;
  method?: 'GET' | 'POST';
  body?: string;
  headers: Record<string, string>;
}

/** Open throttle: autocannon, each connection sending its next request as soon as a response arrives. */
async function autocannonRow(options: LoadOptions): Promise<LoadFigures> {
  const result = await autocannon({ ...options, method: options.method ?? 'GET', connections, duration });
  return {
    requests: result.requests.total,
    requestsPerSecond: result.requests.average,
    p50: result.latency.p50,
    p90: result.latency.p90,
    p99: result.latency.p99,
    max: result.latency.max,
    errors: result.errors + result.timeouts,
    non2xx: result.non2xx,
    generatorLagP99: null,
  };
}

/** A fixed rate: requests evenly spaced, latency from when each was due (paced-load.ts says why not autocannon's). */
async function pacedRow(options: LoadOptions & { rate: number }): Promise<LoadFigures> {
  const result = await pacedLoad({ ...options, connections, durationSeconds: duration });
  const round = (ms: number) => Math.round(ms * 10) / 10;
  return {
    requests: result.sent,
    requestsPerSecond: (result.sent - result.errors) / result.seconds,
    p50: round(percentile(result.latencies, 0.5)),
    p90: round(percentile(result.latencies, 0.9)),
    p99: round(percentile(result.latencies, 0.99)),
    max: round(result.latencies[result.latencies.length - 1] ?? Number.NaN),
    errors: result.errors,
    non2xx: result.non2xx,
    generatorLagP99: round(percentile(result.generatorLag, 0.99)),
  };
}

/** The p99 target for a route at its fixed rate, ms. */
function targetP99Ms(route: string): number {
  return route.startsWith('POST') ? 60 : 25;
}

/** Every measured request's headers: the key, and the body's type when there is one. */
function requestHeaders(options: { body?: string }): Record<string, string> {
  return { ...auth, ...(options.body ? { 'content-type': 'application/json' } : {}) };
}

/** Load at the route's fixed rate, not measured, before its first run: the API's JIT and caches warm up. */
async function warmUp(options: { url: string; method?: 'GET' | 'POST'; body?: string }, rate: number) {
  const seconds = Number(values.warmup);
  if (!(seconds > 0)) return;
  const headers = requestHeaders(options);
  await pacedLoad({ ...options, headers, rate, connections, durationSeconds: seconds });
}

async function measure(
  route: string,
  mode: string,
  options: { url: string; method?: 'GET' | 'POST'; body?: string; rate?: number },
): Promise<Row> {
  // Before anything else: this scrape also resets the event-loop delay monitor.
  const metricsBefore = await scrapeMetrics();
  // The INFO calls themselves are two commands: negligible against thousands of requests.
  const commandsBefore = await redisCommands(monitor);
  const apiCpuBefore = processCpuSeconds(server.pid);
  const redisCpuBefore = await redisCpuSeconds(monitor);
  const headers = requestHeaders(options);
  const load = options.rate
    ? await pacedRow({ ...options, headers, rate: options.rate })
    : await autocannonRow({ ...options, headers });
  const metricsAfter = await scrapeMetrics();
  const commands = (await redisCommands(monitor)) - commandsBefore;
  const apiCpuAfter = processCpuSeconds(server.pid);
  const redisCpu = (await redisCpuSeconds(monitor)) - redisCpuBefore;
  const total = Math.max(1, load.requests);
  return {
    route,
    mode,
    ...load,
    redisPerRequest: commands / total,
    apiCpuUs:
      apiCpuBefore === null || apiCpuAfter === null ? null : ((apiCpuAfter - apiCpuBefore) / total) * 1e6,
    redisCpuUs: (redisCpu / total) * 1e6,
    api: apiAccount(metricsBefore, metricsAfter, route, targetP99Ms(route)),
  };
}

const work = mkdtempSync(path.join(os.tmpdir(), 'lorafuse-bench-api-'));
const redis = await startEmbeddedRedis({ dir: path.join(work, 'redis'), appendOnly: false });
const monitor = new Redis(redis.url);
const port = await freePort();
const base = `http://127.0.0.1:${port}`;
const server = spawn(
  process.execPath,
  [
    ...(values['cpu-prof'] ? ['--cpu-prof', '--cpu-prof-dir', path.resolve(values['cpu-prof'])] : []),
    path.resolve(values.baseline ?? path.resolve(import.meta.dirname, '../..'), 'bin/lorafuse.js'),
    'serve',
  ],
  {
    env: {
      ...process.env,
      REDIS_URL: redis.url,
      PORT: String(port),
      HOST: '127.0.0.1',
      LORAFUSE_DATA_DIR: path.join(work, 'data'),
      // warn by default: at info (serve's default) every request writes two lines to stdout, here a pipe.
      LOG_LEVEL: values['log-level'],
      LORAFUSE_BOOTSTRAP_KEY: bootstrapKey,
      // The per-key limiter stays on (its Redis round trip is part of every request) but far above the rates
      // measured here, which one key sends.
      LORAFUSE_RATE_LIMIT: '10000000',
    },
    stdio: ['ignore', 'inherit', 'inherit'],
  },
);
try {
  await waitReady(base, server);
  if (!values['api-key']) auth.authorization = `Bearer ${await makeProjectKey(base)}`;
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
    `lorafuse API on loopback: ${connections} connections, ${duration} s per run, ${os.cpus().length} cores, load ${load.join(' ')}${values['api-key'] ? ', authenticated with the given bootstrap key' : ', authenticated with a project key (read, write)'}`,
  );
  const rows: Row[] = [];
  for (const [name, route, url] of [
    ['jobs', 'GET /v1/jobs/{id}', `${base}/v1/jobs/${jobId}`],
    ['models', 'GET /v1/models', `${base}/v1/models`],
  ] as const) {
    if (!routes.has(name)) continue;
    await warmUp({ url }, getRate);
    if (modes.has('open')) rows.push(await measure(route, 'open', { url }));
    if (modes.has('rate')) rows.push(await measure(route, `${getRate} req/s`, { url, rate: getRate }));
  }
  const merges = { url: `${base}/v1/merges`, method: 'POST', body: recipe } as const;
  if (routes.has('merges')) await warmUp(merges, postRate);
  if (routes.has('merges') && modes.has('open')) rows.push(await measure('POST /v1/merges', 'open', merges));
  if (routes.has('merges') && modes.has('rate')) {
    rows.push(await measure('POST /v1/merges', `${postRate} req/s`, { ...merges, rate: postRate }));
  }
  console.log(
    '| route | load | req/s | p50 ms | p90 ms | p99 ms | max ms | errors | non-2xx | Redis cmds/req | API CPU µs/req | Redis CPU µs/req | generator lag p99 ms |',
  );
  console.log('|---|---|---|---|---|---|---|---|---|---|---|---|---|');
  for (const row of rows) {
    console.log(
      `| ${row.route} | ${row.mode} | ${row.requestsPerSecond.toFixed(0)} | ${row.p50} | ${row.p90} | ${row.p99} | ${row.max} | ${row.errors} | ${row.non2xx} | ${row.redisPerRequest.toFixed(1)} | ${row.apiCpuUs?.toFixed(0) ?? '–'} | ${row.redisCpuUs.toFixed(0)} | ${row.generatorLagP99 ?? '–'} |`,
    );
  }
  console.log(
    `load average after: ${os
      .loadavg()
      .map((value) => value.toFixed(1))
      .join(' ')}`,
  );
  const paced = rows.filter((r) => r.mode !== 'open');
  if (paced.length > 0) {
    console.log(
      '\n| route | load | p99 ms | answered by the API within the target | API GC pauses ms (minor / major) | API event-loop delay max ms | generator lag p99 ms |',
    );
    console.log('|---|---|---|---|---|---|---|');
    for (const row of paced) {
      const api = row.api;
      const within = api
        ? `${((100 * api.within) / Math.max(1, api.requests)).toFixed(2)}% ≤ ${api.withinMs} ms`
        : '–';
      const gc = api ? `${api.gcMinorMs.toFixed(0)} / ${api.gcMajorMs.toFixed(0)}` : '–';
      console.log(
        `| ${row.route} | ${row.mode} | ${row.p99} | ${within} | ${gc} | ${api?.loopDelayMaxMs.toFixed(1) ?? '–'} | ${row.generatorLagP99 ?? '–'} |`,
      );
    }
  }
  for (const row of paced) {
    const target = targetP99Ms(row.route);
    console.log(
      `${row.route} at ${row.mode}: p99 ${row.p99} ms (target < ${target} ms), ${row.errors + row.non2xx} errors: ${row.p99 < target && row.errors + row.non2xx === 0 ? 'met' : 'NOT met'}`,
    );
  }
} finally {
  server.kill('SIGTERM');
  await new Promise((resolve) => server.once('exit', resolve));
  monitor.disconnect();
  await redis.stop();
  rmSync(work, { recursive: true, force: true });
}
