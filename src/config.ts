// Configuration comes from environment variables only, validated once at start so a typo fails
// loudly with the variable's name instead of surfacing later as a confusing runtime error.
import path from 'node:path';

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

export interface Config {
  port: number;
  host: string;
  /** Undefined: `lorafuse dev` starts a private redis-server; serve/worker refuse to start. */
  redisUrl: string | undefined;
  dataDir: string;
  logLevel: LogLevel;
  /** Prefix of every BullMQ key and record key, so several deployments (or tests) share one Redis. */
  queuePrefix: string;
  /** Merge jobs one worker process runs at once. */
  workerConcurrency: number;
  /** Worker threads of one large merge; undefined: one per core (at most 8) for merges of 32M+ elements. */
  mergeWorkers: number | undefined;
  /** The tfjs runtime of fine-tuning and evaluation. */
  runtime: RuntimeSettings;
  uploads: UploadLimits;
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

/** Reads and validates the configuration; throws ConfigError naming the bad variable. */
export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
  const logLevel = (env.LOG_LEVEL ?? 'info').toLowerCase() as LogLevel;
  if (!LOG_LEVELS.includes(logLevel)) {
    throw new ConfigError('LOG_LEVEL', `expected one of ${LOG_LEVELS.join(', ')}, got "${env.LOG_LEVEL}"`);
  }
  const queuePrefix = env.LORAFUSE_QUEUE_PREFIX ?? 'lorafuse';
  if (!/^[A-Za-z0-9_.-]{1,64}$/.test(queuePrefix)) {
    throw new ConfigError('LORAFUSE_QUEUE_PREFIX', 'letters, digits, "_", "." and "-" only, at most 64');
  }
  const host = env.HOST ?? '127.0.0.1';
  if (host.trim() === '') throw new ConfigError('HOST', 'must not be empty');
  const mib = 1024 * 1024;
  return {
    port: integer(env, 'PORT', 8080, 0, 65535),
    host,
    redisUrl: redisUrl(env),
    dataDir: path.resolve(env.LORAFUSE_DATA_DIR ?? './data'),
    logLevel,
    queuePrefix,
    workerConcurrency: integer(env, 'LORAFUSE_WORKER_CONCURRENCY', 1, 1, 64),
    mergeWorkers: loadMergeWorkers(env),
    runtime: loadRuntimeSettings(env),
    uploads: {
      maxFileBytes: integer(env, 'LORAFUSE_MAX_UPLOAD_MB', 20 * 1024, 1, 1024 * 1024) * mib,
      maxFiles: integer(env, 'LORAFUSE_MAX_UPLOAD_FILES', 256, 1, 10000),
      maxJsonBytes: 16 * mib,
      maxJsonBodyBytes: mib,
      maxFieldBytes: 1024,
    },
  };
}
