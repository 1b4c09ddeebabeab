// Declarations and help texts of the service commands, apart from their modules so that --help and the
// argument checks load nothing heavy.
import { type CommandSpec, formatHelp } from './args.ts';

export const SERVE_SPEC: CommandSpec = {
  command: 'serve',
  summary: `Starts the HTTP API (no workers). Needs REDIS_URL; listens on HOST:PORT (127.0.0.1:8080 by default).
Stops on Ctrl-C or SIGTERM after in-flight requests finish.`,
  options: {},
  notes:
    'Settings are environment variables (README, Configuration): PORT, HOST, REDIS_URL, LORAFUSE_DATA_DIR, ...',
};

export const WORKER_SPEC: CommandSpec = {
  command: 'worker',
  summary: `Runs the merge, finetune and evaluate workers: each job in a sandboxed child process, merges
LORAFUSE_WORKER_CONCURRENCY at once, fine-tunes one at a time.
Needs REDIS_URL. SIGTERM/Ctrl-C: finish active jobs within LORAFUSE_SHUTDOWN_GRACE_MS (60000),
then exit; a job still running then goes back to the queue once its lock expires.`,
  options: {},
};

export const DEV_SPEC: CommandSpec = {
  command: 'dev',
  summary: `Runs the API and the merge, finetune and evaluate workers in one process group. Without REDIS_URL, starts a private
redis-server (AOF on, noeviction) with its data under $LORAFUSE_DATA_DIR/redis. Ctrl-C stops all.`,
  options: {},
};

export const DEMO_SPEC: CommandSpec = {
  command: 'demo',
  summary: `Runs the whole service on this machine and merges four small checkpoints through it:
embedded redis-server + API on a free port + one merge worker, uploads over HTTP, a
task_arithmetic and a ties merge, the result downloaded and checked. Needs redis-server.`,
  options: {
    keep: {
      type: 'boolean',
      description: 'keep the data directory (printed) instead of removing it',
      default: 'off',
    },
  },
};

export const SERVE_USAGE = formatHelp(SERVE_SPEC);
export const WORKER_USAGE = formatHelp(WORKER_SPEC);
export const DEV_USAGE = formatHelp(DEV_SPEC);
export const DEMO_USAGE = formatHelp(DEMO_SPEC);
