// Configuration comes from environment variables only, validated once at start so a typo fails
// loudly with the variable's name instead of surfacing later as a confusing runtime error.
import path from 'node:path';
import type { JobRetention } from './queue/contract.ts';
import type { S3BlobStoreOptions } from './store/s3-blob-store.ts';
import { parseSize } from './merge/shard-size.ts';
import { DEFAULT_MAX_SHARD_BYTES, MAX_JSON_BYTES } from './tensors/index.ts';

export type LogLevel = 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent';

/** Upload limits live here and nowhere else. */
export interface UploadLimits {
  /** Largest single file part (bytes). */
  maxFileBytes: number;
  /** Most file parts in one upload. */
  maxFiles: number;
  /** Largest JSON file part (config.json, adapter_config.json, index.json). */
  maxJsonBytes: number;
  /** Largest JSON request body (a merge recipe, a fine-tune request). */
  maxJsonBodyBytes: number;
  /** Largest plain form field of a multipart upload (e.g. `base_model`). */
  maxFieldBytes: number;
}

/** Where artifact blobs live (records are always in Redis). */
export type BlobStoreConfig =
  | { kind: 'fs' }
  // The store documents each S3 setting; credentials come from the AWS SDK's chain, never from this config.
  | ({ kind: 's3' } & Omit<S3BlobStoreOptions, 'credentials'>);

/** The queues a worker process can serve (the names of src/queue's contract). */
export const WORKER_QUEUES = ['merge', 'finetune', 'evaluate', 'analyze'] as const;
export type WorkerQueue = (typeof WORKER_QUEUES)[number];

/** Which queues one `lorafuse worker` process takes jobs from, and how many of each at once. */
export interface WorkerPlan {
  queues: WorkerQueue[];
  concurrency: Record<WorkerQueue, number>;
}

/**
 * How to reach Redis beyond REDIS_URL: a single server (the URL's host), a Sentinel group that names
 * the current master, or a Cluster seeded by the URL's host and REDIS_CLUSTER_NODES. REDIS_URL always
 * carries the credentials, the database and TLS (rediss://).
 */
export type RedisDeployment =
  | { mode: 'standalone' }
  | {
      mode: 'sentinel';
      sentinels: Array<{ host: string; port: number }>;
      /** The master group name the sentinels monitor (REDIS_SENTINEL_NAME). */
      name: string;
      sentinelPassword?: string;
      /** TLS to the sentinels themselves (REDIS_SENTINEL_TLS). */
      sentinelTls: boolean;
    }
  | { mode: 'cluster'; nodes: Array<{ host: string; port: number }> };

/** Caps on what one request may ask for, so one request cannot hold a worker or Redis hostage. */
export interface RequestLimits {
  /** Most inputs under `models` in one merge recipe. */
  maxRecipeModels: number;
  /** Most (adapter, dataset) pairs one evaluation job runs. */
  maxEvaluationTasks: number;
}

/** Who may call the API, how often, for how long, and from which web origins. */
export interface AccessSettings {
  /** LORAFUSE_AUTH (default on): off only for a private, trusted network or a test that is not about access. */
  authEnabled: boolean;
  /** LORAFUSE_BOOTSTRAP_KEY: accepted as an admin key of the default project (automation, first setup). */
  bootstrapKey: string | undefined;
  /** LORAFUSE_RATE_LIMIT: requests per key (per client address before authentication) per window; 0: no limit. */
  rateLimit: number;
  /** LORAFUSE_RATE_LIMIT_WINDOW_S, in milliseconds. */
  rateLimitWindowMs: number;
  /**
   * LORAFUSE_KEY_CACHE_S, in ms: how long an API process may accept a verified key from memory; a key revoked by
   * another process (the CLI, another replica) works at most this much longer there. 0: every request reads Redis.
   */
  keyCacheMs: number;
  /** LORAFUSE_IDLE_TIMEOUT_S: a connection silent this long (a stalled upload) is cut; ms, 0: never. */
  idleTimeoutMs: number;
  /** LORAFUSE_REQUEST_TIMEOUT_S: the longest a whole request may take to arrive; ms, 0: no limit. */
  requestTimeoutMs: number;
  /** LORAFUSE_CORS_ORIGINS: web origins (dashboards) allowed to call the API from a browser; empty: CORS off. */
  corsOrigins: string[];
}

export interface Config {
  port: number;
  host: string;
  /** Undefined: `lorafuse dev` starts a private redis-server; serve/worker refuse to start. */
  redisUrl: string | undefined;
  /** Sentinel or Cluster (REDIS_SENTINELS / REDIS_CLUSTER); standalone by default. */
  redis: RedisDeployment;
  dataDir: string;
  logLevel: LogLevel;
  /** Prefix of every BullMQ key and record key, so several deployments (or tests) share one Redis. */
  queuePrefix: string;
  /** Merge jobs one worker process runs at once (same as worker.concurrency.merge). */
  workerConcurrency: number;
  /** Worker threads of one large merge; undefined: one per core (at most 8) for merges of 32M+ elements. */
  mergeWorkers: number | undefined;
  /** LORAFUSE_MERGE_SHARD_BYTES: a merge's output shard size unless its recipe sets max_shard_size. */
  mergeShardBytes: number;
  /** The tfjs runtime of fine-tuning and evaluation. */
  runtime: RuntimeSettings;
  /** LORAFUSE_WORKER_QUEUES and LORAFUSE_WORKER_CONCURRENCY (the CLI's --queues/--concurrency override them). */
  worker: WorkerPlan;
  uploads: UploadLimits;
  blobStore: BlobStoreConfig;
  limits: RequestLimits;
  /** How long finished jobs stay readable before BullMQ removes them (their artifacts stay). */
  jobRetention: JobRetention;
  webhooks: WebhookSettings;
  operations: OperationsSettings;
  access: AccessSettings;
}

/** Job webhooks (`callback_url`): how they are signed, where they may go and how they are retried. */
export interface WebhookSettings {
  /** LORAFUSE_WEBHOOK_SECRET: the default project's HMAC key; unset, a callback_url is refused (422). */
  secret: string | undefined;
  /** LORAFUSE_WEBHOOK_ALLOW_PRIVATE: deliver to loopback, private and link-local addresses (off: refused). */
  allowPrivateAddresses: boolean;
  /** LORAFUSE_WEBHOOK_ATTEMPTS: deliveries tried per event before it is given up. */
  attempts: number;
  /** LORAFUSE_WEBHOOK_BACKOFF_MS: the first retry's delay; each next one doubles. */
  backoffMs: number;
  /** LORAFUSE_WEBHOOK_TIMEOUT_MS: how long one delivery may take (connect to last byte). */
  timeoutMs: number;
}

/** What operators watch: /metrics and the /admin/queues dashboard. */
export interface OperationsSettings {
  /** LORAFUSE_METRICS: serve Prometheus metrics at /metrics. */
  metrics: boolean;
  /**
   * LORAFUSE_ADMIN_OPEN: development only. With no authorize hook (API keys) wired in, the admin surfaces
   * (/admin/queues, webhook delivery logs) answer 403 unless this is true.
   */
  adminOpen: boolean;
}

/** The shortest LORAFUSE_BOOTSTRAP_KEY accepted: it is an admin credential, so it must not be guessable. */
const MIN_BOOTSTRAP_KEY = 32;

function accessSettings(env: NodeJS.ProcessEnv): AccessSettings {
  const bootstrapKey = env.LORAFUSE_BOOTSTRAP_KEY || undefined;
  if (bootstrapKey !== undefined && (bootstrapKey.length < MIN_BOOTSTRAP_KEY || /\s/.test(bootstrapKey))) {
    // The value itself is never echoed: it is a secret.
    throw new ConfigError(
      'LORAFUSE_BOOTSTRAP_KEY',
      `must be at least ${MIN_BOOTSTRAP_KEY} characters without spaces (e.g. openssl rand -hex 32)`,
    );
  }
  const origins = (env.LORAFUSE_CORS_ORIGINS ?? '')
    .split(',')
    .map((origin) => origin.trim())
    .filter(Boolean);
  for (const origin of origins) {
    if (origin === '*') continue;
    let url: URL | undefined;
    try {
      url = new URL(origin);
    } catch {}
    if (!url || url.origin !== origin.replace(/\/$/, '')) {
      throw new ConfigError(
        'LORAFUSE_CORS_ORIGINS',
        `"${origin}" is not an origin (scheme://host[:port]) or *`,
      );
    }
  }
  return {
    authEnabled: booleanFlag(env, 'LORAFUSE_AUTH', true),
    bootstrapKey,
    rateLimit: integer(env, 'LORAFUSE_RATE_LIMIT', 6000, 0, 10_000_000),
    rateLimitWindowMs: integer(env, 'LORAFUSE_RATE_LIMIT_WINDOW_S', 60, 1, 86_400) * 1000,
    keyCacheMs: integer(env, 'LORAFUSE_KEY_CACHE_S', 5, 0, 300) * 1000,
    idleTimeoutMs: integer(env, 'LORAFUSE_IDLE_TIMEOUT_S', 60, 0, 86_400) * 1000,
    requestTimeoutMs: integer(env, 'LORAFUSE_REQUEST_TIMEOUT_S', 6 * 3600, 0, 7 * 86_400) * 1000,
    corsOrigins: origins.map((origin) => origin.replace(/\/$/, '')),
  };
}

/** The backends the model runtime can run on (LORAFUSE_BACKEND), or `auto` for the fastest available. */
export const BACKEND_PREFERENCES = ['auto', 'tfjs-node-gpu', 'tfjs-node', 'webgpu', 'wasm', 'cpu'] as const;
export type BackendPreference = (typeof BACKEND_PREFERENCES)[number];

export interface RuntimeSettings {
  /** LORAFUSE_BACKEND: the tfjs backend to try first (it still falls back to wasm, then cpu). */
  backend: BackendPreference;
  /** LORAFUSE_SIMD_KERNELS: lorafuse's wasm SIMD kernels (false keeps tfjs's own). */
  simdKernels: boolean;
  /** LORAFUSE_RUNTIME_IDLE_MS: how long a runtime worker thread stays warm after its job (0 ends it at once). */
  runtimeIdleMs: number;
  /**
   * LD_LIBRARY_PATH, the dynamic linker's own variable (not a lorafuse setting): where the WebGPU probe looks for
   * the Vulkan loader beside the linker's cache. Read here so that src/model reads no environment.
   */
  librarySearchPath: string;
}

export class ConfigError extends Error {
  constructor(
    readonly variable: string,
    message: string,
  ) {
    super(`${variable}: ${message}`);
    this.name = 'ConfigError';
  }
}

const LOG_LEVELS: readonly LogLevel[] = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'];

function integer(env: NodeJS.ProcessEnv, name: string, fallback: number, min: number, max: number): number {
  const raw = env[name];
  if (raw === undefined || raw === '') return fallback;
  if (!/^\d+$/.test(raw.trim())) throw new ConfigError(name, `expected a whole number, got "${raw}"`);
  const value = Number(raw);
  if (value < min || value > max)
    throw new ConfigError(name, `must be between ${min} and ${max}, got ${value}`);
  return value;
}

function redisUrl(env: NodeJS.ProcessEnv): string | undefined {
  const raw = env.REDIS_URL;
  if (raw === undefined || raw === '') return undefined;
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new ConfigError('REDIS_URL', 'not a URL (expected redis://host:port or rediss://...)');
  }
  if (url.protocol !== 'redis:' && url.protocol !== 'rediss:') {
    throw new ConfigError('REDIS_URL', `unsupported scheme "${url.protocol}" (expected redis: or rediss:)`);
  }
  return raw;
}

/** LORAFUSE_MERGE_WORKERS: 0 merges inline, 1..64 threads; unset or empty leaves the choice to the merge. */
export function loadMergeWorkers(env: NodeJS.ProcessEnv = process.env): number | undefined {
  const raw = env.LORAFUSE_MERGE_WORKERS;
  if (raw === undefined || raw === '') return undefined;
  return integer(env, 'LORAFUSE_MERGE_WORKERS', 0, 0, 64);
}

/**
 * LORAFUSE_MERGE_SHARD_BYTES: the largest output shard of a merge whose recipe sets no max_shard_size (bytes, or
 * "5GB", "2GiB"); transformers' 5GB by default. A model output larger than one shard is merged shard by shard,
 * each shard a job of its own that any merge worker may take.
 */
export function loadMergeShardBytes(env: NodeJS.ProcessEnv = process.env): number {
  const raw = env.LORAFUSE_MERGE_SHARD_BYTES;
  if (raw === undefined || raw.trim() === '') return DEFAULT_MAX_SHARD_BYTES;
  try {
    return parseSize(raw);
  } catch (error) {
    throw new ConfigError('LORAFUSE_MERGE_SHARD_BYTES', (error as Error).message);
  }
}

/** LORAFUSE_BACKEND and LORAFUSE_SIMD_KERNELS: how the model runtime starts. */
export function loadRuntimeSettings(env: NodeJS.ProcessEnv = process.env): RuntimeSettings {
  const backend = (env.LORAFUSE_BACKEND || 'auto').trim().toLowerCase();
  if (!(BACKEND_PREFERENCES as readonly string[]).includes(backend)) {
    throw new ConfigError(
      'LORAFUSE_BACKEND',
      `expected one of ${BACKEND_PREFERENCES.join(', ')}, got "${env.LORAFUSE_BACKEND}"`,
    );
  }
  const simd = env.LORAFUSE_SIMD_KERNELS ?? '';
  if (simd !== '' && simd !== '0' && simd !== '1') {
    throw new ConfigError('LORAFUSE_SIMD_KERNELS', `expected 0 or 1, got "${simd}"`);
  }
  return {
    backend: backend as BackendPreference,
    simdKernels: simd !== '0',
    runtimeIdleMs: runtimeIdleMilliseconds(env),
    librarySearchPath: env.LD_LIBRARY_PATH ?? '',
  };
}

/**
 * LORAFUSE_RUNTIME_IDLE_MS, default 60 s. A fresh runtime worker runs its first hundred or so steps up to 1.7×
 * slower while V8 compiles tfjs's code for it on the same two cores (measured: 16.9 ms per step over the first 40
 * steps, 9.4 ms by step 400); a job that finds a warm worker skips that, and pays only its model's loading.
 */
function runtimeIdleMilliseconds(env: NodeJS.ProcessEnv): number {
  const name = 'LORAFUSE_RUNTIME_IDLE_MS';
  const raw = env[name];
  if (raw === undefined || raw === '') return 60_000;
  if (!/^\d+$/.test(raw.trim()) || Number(raw) > 24 * 3600 * 1000) {
    throw new ConfigError(name, `expected milliseconds from 0 to 86400000, got "${raw}"`);
  }
  return Number(raw);
}

/** `host:port,host:port` (port defaulting to `defaultPort`), for sentinels and cluster seeds. */
function hostList(raw: string, name: string, defaultPort: number): Array<{ host: string; port: number }> {
  return raw.split(',').map((entry) => {
    const text = entry.trim();
    const match = /^(\[[0-9a-fA-F:.]+\]|[^:\s]+)(?::(\d{1,5}))?$/.exec(text);
    const port = match?.[2] === undefined ? defaultPort : Number(match[2]);
    if (!match || port < 1 || port > 65535) {
      throw new ConfigError(name, `"${text}" is not host:port`);
    }
    return { host: match[1].replace(/^\[|\]$/g, ''), port };
  });
}

/**
 * REDIS_SENTINELS=host:26379,... with REDIS_SENTINEL_NAME (and REDIS_SENTINEL_PASSWORD,
 * REDIS_SENTINEL_TLS), or REDIS_CLUSTER=true (seeds: REDIS_URL's host plus REDIS_CLUSTER_NODES).
 */
function redisDeployment(env: NodeJS.ProcessEnv, url: string | undefined): RedisDeployment {
  const sentinels = env.REDIS_SENTINELS?.trim();
  const clusterNodes = env.REDIS_CLUSTER_NODES?.trim();
  const cluster = booleanFlag(env, 'REDIS_CLUSTER', false) || Boolean(clusterNodes);
  if (sentinels && cluster) {
    throw new ConfigError(
      'REDIS_SENTINELS',
      'Sentinel and Cluster modes exclude each other (REDIS_CLUSTER is set)',
    );
  }
  if ((sentinels || cluster) && !url) {
    throw new ConfigError(
      'REDIS_URL',
      `required with ${sentinels ? 'REDIS_SENTINELS' : 'REDIS_CLUSTER'}: it carries the credentials, database and TLS`,
    );
  }
  if (sentinels) {
    const name = env.REDIS_SENTINEL_NAME?.trim();
    if (!name)
      throw new ConfigError('REDIS_SENTINEL_NAME', 'required with REDIS_SENTINELS (the master group name)');
    return {
      mode: 'sentinel',
      sentinels: hostList(sentinels, 'REDIS_SENTINELS', 26379),
      name,
      sentinelPassword: env.REDIS_SENTINEL_PASSWORD || undefined,
      sentinelTls: booleanFlag(env, 'REDIS_SENTINEL_TLS', false),
    };
  }
  if (cluster) {
    if (url && !['', '0'].includes(new URL(url).pathname.replace('/', ''))) {
      throw new ConfigError('REDIS_URL', 'Redis Cluster has only database 0');
    }
    const seed = url ? [{ host: new URL(url).hostname, port: Number(new URL(url).port || 6379) }] : [];
    return {
      mode: 'cluster',
      nodes: [...seed, ...(clusterNodes ? hostList(clusterNodes, 'REDIS_CLUSTER_NODES', 6379) : [])],
    };
  }
  return { mode: 'standalone' };
}

function booleanFlag(env: NodeJS.ProcessEnv, name: string, fallback: boolean): boolean {
  const raw = env[name]?.trim().toLowerCase();
  if (raw === undefined || raw === '') return fallback;
  if (['1', 'true', 'yes'].includes(raw)) return true;
  if (['0', 'false', 'no'].includes(raw)) return false;
  throw new ConfigError(name, `expected true or false, got "${env[name]}"`);
}

/** LORAFUSE_WEBHOOK_*: a secret shorter than 16 characters is refused (it is an HMAC key, not a password). */
function webhookSettings(env: NodeJS.ProcessEnv): WebhookSettings {
  const secret = env.LORAFUSE_WEBHOOK_SECRET;
  if (secret !== undefined && secret !== '' && secret.length < 16) {
    throw new ConfigError('LORAFUSE_WEBHOOK_SECRET', 'must be at least 16 characters');
  }
  return {
    secret: secret || undefined,
    allowPrivateAddresses: booleanFlag(env, 'LORAFUSE_WEBHOOK_ALLOW_PRIVATE', false),
    attempts: integer(env, 'LORAFUSE_WEBHOOK_ATTEMPTS', 8, 1, 50),
    backoffMs: integer(env, 'LORAFUSE_WEBHOOK_BACKOFF_MS', 2000, 10, 3_600_000),
    timeoutMs: integer(env, 'LORAFUSE_WEBHOOK_TIMEOUT_MS', 10_000, 100, 120_000),
  };
}

/**
 * LORAFUSE_BLOB_STORE=fs (default: the data directory) or s3 with LORAFUSE_S3_BUCKET (required),
 * LORAFUSE_S3_ENDPOINT (an S3-compatible server; path-style URLs then by default), LORAFUSE_S3_REGION
 * (else AWS_REGION, else us-east-1), LORAFUSE_S3_PREFIX. Credentials: the AWS SDK's usual chain.
 */
function blobStore(env: NodeJS.ProcessEnv): BlobStoreConfig {
  const kind = (env.LORAFUSE_BLOB_STORE ?? 'fs').trim().toLowerCase();
  if (kind === 'fs' || kind === '') return { kind: 'fs' };
  if (kind !== 's3')
    throw new ConfigError('LORAFUSE_BLOB_STORE', `expected fs or s3, got "${env.LORAFUSE_BLOB_STORE}"`);
  const bucket = env.LORAFUSE_S3_BUCKET?.trim() ?? '';
  // S3's bucket naming rules (lowercase, digits, dots, hyphens; 3 to 63 characters).
  if (!/^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/.test(bucket)) {
    throw new ConfigError(
      'LORAFUSE_S3_BUCKET',
      bucket === '' ? 'required when LORAFUSE_BLOB_STORE=s3' : `"${bucket}" is not a valid bucket name`,
    );
  }
  const endpointRaw = env.LORAFUSE_S3_ENDPOINT?.trim();
  let endpoint: string | undefined;
  if (endpointRaw) {
    let url: URL;
    try {
      url = new URL(endpointRaw);
    } catch {
      throw new ConfigError(
        'LORAFUSE_S3_ENDPOINT',
        `not a URL: "${endpointRaw}" (expected http(s)://host:port)`,
      );
    }
    if (url.protocol !== 'http:' && url.protocol !== 'https:') {
      throw new ConfigError('LORAFUSE_S3_ENDPOINT', `expected http: or https:, got "${url.protocol}"`);
    }
    endpoint = endpointRaw;
  }
  let prefix = (env.LORAFUSE_S3_PREFIX ?? '').trim().replace(/^\/+/, '');
  if (prefix !== '' && !prefix.endsWith('/')) prefix += '/';
  if (prefix.length > 512) throw new ConfigError('LORAFUSE_S3_PREFIX', 'at most 512 characters');
  const mib = 1024 * 1024;
  return {
    kind: 's3',
    bucket,
    prefix,
    region: env.LORAFUSE_S3_REGION?.trim() || env.AWS_REGION?.trim() || 'us-east-1',
    endpoint,
    forcePathStyle: booleanFlag(env, 'LORAFUSE_S3_FORCE_PATH_STYLE', endpoint !== undefined),
    partSize: integer(env, 'LORAFUSE_S3_PART_MB', 16, 5, 5 * 1024) * mib,
    queueSize: integer(env, 'LORAFUSE_S3_UPLOAD_QUEUE', 4, 1, 64),
  };
}

/**
 * `merge,evaluate`: the queues to serve, each at most once. `label` names the setting in errors
 * (the environment variable or the CLI option).
 */
export function parseWorkerQueues(raw: string, label: string): WorkerQueue[] {
  const queues: WorkerQueue[] = [];
  for (const part of raw.split(',').map((entry) => entry.trim().toLowerCase())) {
    if (!(WORKER_QUEUES as readonly string[]).includes(part)) {
      throw new ConfigError(label, `unknown queue "${part}" (expected some of ${WORKER_QUEUES.join(', ')})`);
    }
    if (queues.includes(part as WorkerQueue)) throw new ConfigError(label, `"${part}" is named twice`);
    queues.push(part as WorkerQueue);
  }
  return queues;
}

/**
 * `4` (merge and evaluate jobs 4 at a time, fine-tunes 1: training already uses every core) or
 * per queue, `merge=2,finetune=1`; both may be mixed (`4,finetune=2`). Unnamed queues keep `base`.
 */
export function parseWorkerConcurrency(
  raw: string,
  label: string,
  base: Record<WorkerQueue, number> = { merge: 1, finetune: 1, evaluate: 1, analyze: 1 },
): Record<WorkerQueue, number> {
  const concurrency = { ...base };
  const count = (text: string): number => {
    if (!/^\d+$/.test(text)) throw new ConfigError(label, `expected a whole number, got "${text}"`);
    const value = Number(text);
    if (value < 1 || value > 64) throw new ConfigError(label, `must be between 1 and 64, got ${value}`);
    return value;
  };
  for (const part of raw.split(',').map((entry) => entry.trim())) {
    const [name, value] = part.includes('=') ? part.split('=', 2).map((side) => side.trim()) : [null, part];
    if (name === null) {
      concurrency.merge = concurrency.evaluate = concurrency.analyze = count(value);
      continue;
    }
    const queue = name.toLowerCase();
    if (!(WORKER_QUEUES as readonly string[]).includes(queue)) {
      throw new ConfigError(label, `unknown queue "${name}" (expected ${WORKER_QUEUES.join(', ')})`);
    }
    concurrency[queue as WorkerQueue] = count(value);
  }
  return concurrency;
}

function workerPlan(env: NodeJS.ProcessEnv): WorkerPlan {
  const queues = env.LORAFUSE_WORKER_QUEUES?.trim();
  const concurrency = env.LORAFUSE_WORKER_CONCURRENCY?.trim();
  return {
    queues: queues ? parseWorkerQueues(queues, 'LORAFUSE_WORKER_QUEUES') : [...WORKER_QUEUES],
    concurrency: concurrency
      ? parseWorkerConcurrency(concurrency, 'LORAFUSE_WORKER_CONCURRENCY')
      : { merge: 1, finetune: 1, evaluate: 1, analyze: 1 },
  };
}

/** Reads and validates the configuration; throws ConfigError naming the bad variable. */
export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
  const logLevel = (env.LOG_LEVEL ?? 'info').toLowerCase() as LogLevel;
  if (!LOG_LEVELS.includes(logLevel)) {
    throw new ConfigError('LOG_LEVEL', `expected one of ${LOG_LEVELS.join(', ')}, got "${env.LOG_LEVEL}"`);
  }
  let queuePrefix = env.LORAFUSE_QUEUE_PREFIX ?? 'lorafuse';
  // `{name}` is the hash-tag form Redis Cluster needs (every key of a deployment in one slot).
  if (!/^(\{[A-Za-z0-9_.-]{1,64}\}|[A-Za-z0-9_.-]{1,64})$/.test(queuePrefix)) {
    throw new ConfigError(
      'LORAFUSE_QUEUE_PREFIX',
      'letters, digits, "_", "." and "-" only, at most 64 (optionally inside {} as a hash tag)',
    );
  }
  const url = redisUrl(env);
  const redis = redisDeployment(env, url);
  // BullMQ's Lua scripts and our own touch several keys at once: in a cluster they must share a slot.
  if (redis.mode === 'cluster' && !queuePrefix.startsWith('{')) queuePrefix = `{${queuePrefix}}`;
  const host = env.HOST ?? '127.0.0.1';
  if (host.trim() === '') throw new ConfigError('HOST', 'must not be empty');
  const mib = 1024 * 1024;
  const worker = workerPlan(env);
  return {
    port: integer(env, 'PORT', 8080, 0, 65535),
    host,
    redisUrl: url,
    redis,
    dataDir: path.resolve(env.LORAFUSE_DATA_DIR ?? './data'),
    logLevel,
    queuePrefix,
    workerConcurrency: worker.concurrency.merge,
    worker,
    mergeWorkers: loadMergeWorkers(env),
    mergeShardBytes: loadMergeShardBytes(env),
    runtime: loadRuntimeSettings(env),
    uploads: {
      maxFileBytes: integer(env, 'LORAFUSE_MAX_UPLOAD_MB', 20 * 1024, 1, 1024 * 1024) * mib,
      maxFiles: integer(env, 'LORAFUSE_MAX_UPLOAD_FILES', 256, 1, 10000),
      // Every JSON side file is also held to MAX_JSON_DEPTH (src/tensors/bounded-json.ts).
      maxJsonBytes: MAX_JSON_BYTES,
      maxJsonBodyBytes: mib,
      maxFieldBytes: 1024,
    },
    blobStore: blobStore(env),
    jobRetention: {
      completed: {
        age: integer(env, 'LORAFUSE_COMPLETED_JOBS_MAX_AGE_S', 7 * 86_400, 1, 10 * 365 * 86_400),
        count: integer(env, 'LORAFUSE_COMPLETED_JOBS_MAX_COUNT', 10_000, 1, 10_000_000),
      },
      failed: {
        age: integer(env, 'LORAFUSE_FAILED_JOBS_MAX_AGE_S', 30 * 86_400, 1, 10 * 365 * 86_400),
        count: integer(env, 'LORAFUSE_FAILED_JOBS_MAX_COUNT', 10_000, 1, 10_000_000),
      },
    },
    webhooks: webhookSettings(env),
    operations: {
      metrics: booleanFlag(env, 'LORAFUSE_METRICS', true),
      adminOpen: booleanFlag(env, 'LORAFUSE_ADMIN_OPEN', false),
    },
    access: accessSettings(env),
    limits: {
      maxRecipeModels: integer(env, 'LORAFUSE_MAX_RECIPE_MODELS', 64, 1, 4096),
      maxEvaluationTasks: integer(env, 'LORAFUSE_MAX_EVALUATION_TASKS', 64, 1, 4096),
    },
  };
}
