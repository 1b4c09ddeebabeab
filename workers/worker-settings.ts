// Worker tuning read from the environment beside src/config.ts: lock and stalled-check periods
// (tests shorten them to see stalled-job recovery in seconds) and the shutdown grace period.
import { ConfigError } from '../src/config.ts';

export interface WorkerSettings {
  /** How long a job's lock lasts without renewal; a dead worker's job is recovered after it. */
  lockDurationMs: number;
  /** How often workers look for jobs whose lock expired. */
  stalledIntervalMs: number;
  /** On SIGTERM, how long active jobs may run on before the process exits anyway. */
  shutdownGraceMs: number;
}

function milliseconds(env: NodeJS.ProcessEnv, name: string, fallback: number): number {
  const raw = env[name];
  if (raw === undefined || raw === '') return fallback;
  if (!/^\d+$/.test(raw.trim())) throw new ConfigError(name, `expected milliseconds, got "${raw}"`);
  const value = Number(raw);
  if (value < 100 || value > 24 * 3600 * 1000) {
    throw new ConfigError(name, `must be between 100 and 86400000, got ${value}`);
  }
  return value;
}

export function loadWorkerSettings(env: NodeJS.ProcessEnv = process.env): WorkerSettings {
  return {
    lockDurationMs: milliseconds(env, 'LORAFUSE_WORKER_LOCK_MS', 30_000),
    stalledIntervalMs: milliseconds(env, 'LORAFUSE_WORKER_STALLED_MS', 30_000),
    shutdownGraceMs: milliseconds(env, 'LORAFUSE_SHUTDOWN_GRACE_MS', 60_000),
  };
}

/**
 * LORAFUSE_TRAIN_RUNTIMES: the wasm runtimes (this thread's and worker threads') one fine-tune job trains on,
 * data-parallel; other backends are multi-threaded themselves and use one. Read by the fine-tune processor (a
 * child process, from the environment it inherits) and checked when the worker starts. Two by default, not one
 * per core: the split of each batch changes float sums in the last bits, so a job gives the same result on every
 * machine unless this is set.
 */
export function loadTrainingRuntimes(env: NodeJS.ProcessEnv = process.env): number {
  const name = 'LORAFUSE_TRAIN_RUNTIMES';
  const raw = env[name];
  if (raw === undefined || raw === '') return 2;
  if (!/^\d+$/.test(raw.trim()) || Number(raw) < 1 || Number(raw) > 16) {
    throw new ConfigError(name, `expected a whole number of runtimes from 1 to 16, got "${raw}"`);
  }
  return Number(raw);
}
