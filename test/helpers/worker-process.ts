// `lorafuse worker` as a real child process for fault tests: its own process group (so a kill takes
// its sandboxed children with it, as a crashed machine would), its output kept for failure messages,
// and a way to reach the sandboxed processors it forked.
import { readdirSync, readFileSync } from 'node:fs';
import { type LorafuseProcess, spawnLorafuse } from './lorafuse-process.ts';

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
