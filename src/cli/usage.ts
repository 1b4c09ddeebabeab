// Usage texts of the service commands, apart from their modules so that --help loads nothing heavy.

export const SERVE_USAGE = `usage: lorafuse serve

Starts the HTTP API (no workers). Needs REDIS_URL; listens on HOST:PORT (127.0.0.1:8080 by default).
Stops on Ctrl-C or SIGTERM after in-flight requests finish.
`;

export const WORKER_USAGE = `usage: lorafuse worker

Runs the merge, finetune, evaluate and analyze workers: each job in a sandboxed child process, merges
LORAFUSE_WORKER_CONCURRENCY at once, fine-tunes one at a time.
Needs REDIS_URL. SIGTERM/Ctrl-C: finish active jobs within LORAFUSE_SHUTDOWN_GRACE_MS (60000),
then exit; a job still running then goes back to the queue once its lock expires.
`;

export const DEV_USAGE = `usage: lorafuse dev

Runs the API and the merge, finetune, evaluate and analyze workers in one process group. Without REDIS_URL, starts a private
redis-server (AOF on, noeviction) with its data under $LORAFUSE_DATA_DIR/redis. Ctrl-C stops all.
`;

export const DEMO_USAGE = `usage: lorafuse demo [--keep]

Runs the whole service on this machine and merges four small checkpoints through it:
embedded redis-server + API on a free port + one merge worker, uploads over HTTP, a
task_arithmetic and a ties merge, the result downloaded and checked. Needs redis-server.
  --keep   keep the data directory (printed) instead of removing it
`;
