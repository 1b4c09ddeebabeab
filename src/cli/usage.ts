// Declarations and help texts of the service commands, apart from their modules so that --help and the
// argument checks load nothing heavy.
import { type CommandSpec, formatHelp } from './args.ts';

export const SERVE_SPEC: CommandSpec = {
  command: 'serve',
  summary: `Starts the HTTP API (no workers). Needs REDIS_URL; listens on HOST:PORT (127.0.0.1:8080 by default).
Ctrl-C or SIGTERM: stops listening, lets in-flight requests finish; past LORAFUSE_SHUTDOWN_GRACE_MS
(60000) cuts those whose body is still arriving (their uploads leave nothing behind), then exits.`,
  options: {},
  notes:
    'Settings are environment variables (README, Configuration): PORT, HOST, REDIS_URL, LORAFUSE_DATA_DIR, ...',
};

export const WORKER_SPEC: CommandSpec = {
  command: 'worker',
  summary: `Runs queue workers: each job in a sandboxed child process. Any number of worker processes on any
number of machines may share one Redis (and one S3 bucket, LORAFUSE_BLOB_STORE=s3).
Needs REDIS_URL. SIGTERM/Ctrl-C: finish active jobs within LORAFUSE_SHUTDOWN_GRACE_MS (60000),
then exit; a job still running then goes back to the queue once its lock expires.`,
  options: {
    queues: {
      type: 'string',
      value: 'LIST',
      description:
        'queues to take jobs from, comma-separated: merge, finetune, evaluate, analyze (CPU machines: merge,analyze; GPU machines: finetune,evaluate)',
      default: 'all four, or LORAFUSE_WORKER_QUEUES',
    },
    concurrency: {
      type: 'string',
      value: 'SPEC',
      description:
        'jobs at once: N (merge, evaluate and analyze; fine-tunes stay at 1) or per queue, merge=2,finetune=1,evaluate=2',
      default: '1 each, or LORAFUSE_WORKER_CONCURRENCY',
    },
    health: {
      type: 'boolean',
      description:
        'exit 0 when the worker running with this data directory refreshed its heartbeat file (LORAFUSE_WORKER_HEARTBEAT_FILE or $LORAFUSE_DATA_DIR/worker.heartbeat) in the last 30 s, 1 otherwise: a container health check',
      default: 'off',
    },
  },
};

export const DEV_SPEC: CommandSpec = {
  command: 'dev',
  summary: `Runs the API and the merge, finetune, evaluate and analyze workers in one process group. Without REDIS_URL, starts a private
redis-server (AOF on, noeviction) with its data under $LORAFUSE_DATA_DIR/redis. Ctrl-C stops all.`,
  options: {},
};

export const DEMO_SPEC: CommandSpec = {
  command: 'demo',
  summary: `The product in under 2 minutes on 2 idle cores: the quick study (lorafuse study --quick). Starts the
embedded stack, fine-tunes four MNIST-derived tasks with full fine-tuning, LoRA and L-LoRA through the queue,
merges each set (averaging, task arithmetic, TIES, LoraHub; λ and density searched on validation), evaluates on
test, analyses the task vectors, prints the paper-style table and where the report is. Needs redis-server.
\`lorafuse demo merge\` is the merge walkthrough on four small checkpoints.`,
  options: {
    out: {
      type: 'string',
      value: 'DIR',
      path: 'new-path',
      description: 'where results.json and report.html go',
      default: 'lorafuse-demo',
    },
  },
};

export const DEMO_MERGE_SPEC: CommandSpec = {
  command: 'demo merge',
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
export const DEMO_USAGE = formatHelp(DEMO_MERGE_SPEC);
