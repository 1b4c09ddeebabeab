// Configuration comes from environment variables only, validated once at start so a typo fails
// loudly with the variable's name instead of surfacing later as a confusing runtime error.
import path from 'node:path';
import type { JobRetention } from './queue/contract.ts';
import { MAX_JSON_BYTES } from './tensors/index.ts';

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

/** Caps on what one request may ask for, so one request cannot hold a worker or Redis hostage. */
export interface RequestLimits {
  /** Most inputs under `models` in one merge recipe. */
  maxRecipeModels: number;
  /** Most (adapter, dataset) pairs one evaluation job runs. */
  maxEvaluationTasks: number;
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
  uploads: UploadLimits;
  limits: RequestLimits;
  /** How long finished jobs stay readable before BullMQ removes them (their artifacts stay). */
  jobRetention: JobRetention;
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
    uploads: {
      maxFileBytes: integer(env, 'LORAFUSE_MAX_UPLOAD_MB', 20 * 1024, 1, 1024 * 1024) * mib,
      maxFiles: integer(env, 'LORAFUSE_MAX_UPLOAD_FILES', 256, 1, 10000),
      // Every JSON side file is also held to MAX_JSON_DEPTH (src/tensors/bounded-json.ts).
      maxJsonBytes: MAX_JSON_BYTES,
      maxJsonBodyBytes: mib,
      maxFieldBytes: 1024,
    },
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
    limits: {
      maxRecipeModels: integer(env, 'LORAFUSE_MAX_RECIPE_MODELS', 64, 1, 4096),
      maxEvaluationTasks: integer(env, 'LORAFUSE_MAX_EVALUATION_TASKS', 64, 1, 4096),
    },
  };
}
