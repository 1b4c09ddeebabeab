// A worker's liveness for container health checks: while every queue worker's Redis connection
// answers PING, the process rewrites a small heartbeat file; `lorafuse worker --health` passes when
// the file is fresh. A worker that hangs, loses Redis for good or dies stops refreshing it.
import fs from 'node:fs/promises';
import path from 'node:path';

export const HEARTBEAT_INTERVAL_MS = 10_000;
/** Three missed beats and the worker counts as unhealthy. */
export const HEARTBEAT_STALE_MS = 3 * HEARTBEAT_INTERVAL_MS;

/** LORAFUSE_WORKER_HEARTBEAT_FILE, else `${dataDir}/worker.heartbeat` (one per data directory). */
export function heartbeatFile(dataDir: string, env: NodeJS.ProcessEnv = process.env): string {
  return path.resolve(env.LORAFUSE_WORKER_HEARTBEAT_FILE || path.join(dataDir, 'worker.heartbeat'));
}

export interface Heartbeat {
  stop(): Promise<void>;
}

/** Beats now and every interval while `alive()` resolves; a failed check skips the beat. */
export function startHeartbeat(file: string, alive: () => Promise<void>, details: object): Heartbeat {
  const beat = async () => {
    try {
      await alive();
      const temporary = `${file}.${process.pid}`;
      await fs.mkdir(path.dirname(file), { recursive: true });
      await fs.writeFile(
        temporary,
        JSON.stringify({ ...details, pid: process.pid, at: new Date().toISOString() }),
      );
      await fs.rename(temporary, file);
    } catch {
      // no beat: the health check notices the silence
    }
  };
  let running = beat();
  const timer = setInterval(() => {
    running = beat();
  }, HEARTBEAT_INTERVAL_MS);
  timer.unref();
  return {
    async stop() {
      clearInterval(timer);
      await running;
      await fs.rm(file, { force: true });
    },
  };
}

/** Exit code of `lorafuse worker --health`: 0 when the heartbeat is fresh, 1 otherwise (with why). */
export async function checkHeartbeat(
  file: string,
  now = Date.now(),
): Promise<{ ok: boolean; message: string }> {
  let stat: Awaited<ReturnType<typeof fs.stat>>;
  try {
    stat = await fs.stat(file);
  } catch {
    return { ok: false, message: `no heartbeat at ${file}: the worker is not running (or not ready)` };
  }
  const age = now - stat.mtimeMs;
  if (age > HEARTBEAT_STALE_MS) {
    return {
      ok: false,
      message: `heartbeat ${Math.round(age / 1000)} s old (limit ${HEARTBEAT_STALE_MS / 1000} s)`,
    };
  }
  return { ok: true, message: `healthy: heartbeat ${Math.round(age / 1000)} s old` };
}
