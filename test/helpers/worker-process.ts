// `lorafuse worker` as a real child process for fault tests: its own process group (so a kill takes
// its sandboxed children with it, as a crashed machine would), its output kept for failure messages,
// and a way to reach the sandboxed processors it forked.
import { readdirSync, readFileSync } from 'node:fs';
import { type LorafuseProcess, spawnLorafuse } from './lorafuse-process.ts';
import { HANG_GUARD_MS, waitFor } from './wait.ts';

export interface WorkerProcess extends LorafuseProcess {
  /** SIGKILLs the whole process group unless it already exited; resolves once it has. */
  kill(): Promise<void>;
  /** The processes the worker forked (its sandboxed processors), by /proc's parent links. */
  sandboxes(): number[];
}

/** Starts `lorafuse worker` with `env` over the test's own environment; `args` after `worker`. */
export function spawnWorkerProcess(env: Record<string, string>, args: string[] = []): WorkerProcess {
  const worker = spawnLorafuse(['worker', ...args], env, { detached: true });
  const { child, exited } = worker;
  return {
    ...worker,
    async kill() {
      if (child.exitCode === null && child.signalCode === null) {
        process.kill(-(child.pid as number), 'SIGKILL');
        await exited;
      }
    },
    sandboxes: () => childrenOf(child.pid as number),
  };
}

/**
 * A merge-only worker for kill tests, on the test API's queue prefix and data directory: a 1 s lock and a 0.5 s
 * stalled check, so the job of a killed one is taken over quickly.
 */
export function spawnMergeWorkerProcess(setup: {
  redisUrl: string;
  prefix: string;
  dataDir: string;
}): WorkerProcess {
  return spawnWorkerProcess(
    {
      REDIS_URL: setup.redisUrl,
      LORAFUSE_QUEUE_PREFIX: setup.prefix,
      LORAFUSE_DATA_DIR: setup.dataDir,
      LORAFUSE_BACKEND: 'wasm',
      LOG_LEVEL: 'info',
      LORAFUSE_WORKER_LOCK_MS: '1000',
      LORAFUSE_WORKER_STALLED_MS: '500',
    },
    ['--queues', 'merge', '--concurrency', 'merge=1'],
  );
}

/**
 * SIGKILLs the worker's process group at the moment `wanted` picks out (null: not yet). The state is read again
 * while the group is frozen (SIGSTOP), so what the test sees is what the worker was doing when it died; a worker
 * that raced past the moment is thawed (SIGCONT) and looked at again. Resolves once its output is all read.
 */
export async function killWhenFrozen<T>(
  worker: WorkerProcess,
  what: string,
  wanted: () => Promise<T | null>,
): Promise<T> {
  const group = -(worker.child.pid as number);
  const seen = await waitFor(
    what,
    async () => {
      if (!(await wanted())) return null;
      process.kill(group, 'SIGSTOP');
      // Let a command the worker sent just before it stopped reach Redis before looking again.
      await new Promise((resolve) => setTimeout(resolve, 100));
      const frozen = await wanted();
      if (frozen) return frozen;
      process.kill(group, 'SIGCONT');
      return null;
    },
    HANG_GUARD_MS,
    10,
  );
  process.kill(group, 'SIGKILL');
  const exit = await worker.exited;
  if (exit.signal !== 'SIGKILL')
    throw new Error(`the worker ended (${JSON.stringify(exit)}) before the kill`);
  await worker.drained;
  return seen;
}

/** Pids whose parent is `pid` (Linux /proc). */
function childrenOf(pid: number): number[] {
  const children: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      // stat: "pid (comm) state ppid ..."; comm may hold spaces and parentheses, so split after the last ')'.
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      if (ppid === pid) children.push(Number(entry));
    } catch {
      // the process exited while we looked
    }
  }
  return children;
}
