// A worker_threads pool for per-tensor merge work: one job per worker at a time. Every worker sees the
// merge's working set (a SharedArrayBuffer, given once at start), so a job is a few offsets and
// parameters and its answer a count: no tensor is copied or transferred between threads.
import { Worker } from 'node:worker_threads';
import type { RangeAnswer } from '../method.ts';
import type { ArenaTensorJob } from './tensor-job.ts';
import { bundledWorkerScript } from './worker-script.ts';

interface Pending {
  job: ArenaTensorJob;
  resolve: (result: RangeAnswer) => void;
  reject: (error: Error) => void;
}

const BOOTSTRAP = new URL('./worker-bootstrap.mjs', import.meta.url);
const ENTRY = new URL('./tensor-worker.ts', import.meta.url).href;

export class MergeWorkerPool {
  readonly size: number;
  readonly #workers: Worker[] = [];
  readonly #idle: Worker[] = [];
  readonly #queue: Pending[] = [];
  readonly #running = new Map<Worker, Pending>();
  #closed = false;

  constructor(size: number, arena: SharedArrayBuffer) {
    this.size = size;
    // One bundled script when esbuild is at hand (no loader per thread), else tsx's loader per worker.
    const script = bundledWorkerScript(ENTRY);
    for (let i = 0; i < size; i++) {
      const worker = script
        ? new Worker(script, { eval: true, workerData: { arena } })
        : new Worker(BOOTSTRAP, { workerData: { entry: ENTRY, arena } });
      worker.on(
        'message',
        (message: { id: number; result?: RangeAnswer; error?: { name: string; message: string } }) => {
          const pending = this.#running.get(worker);
          this.#running.delete(worker);
          if (pending) {
            if (message.error)
              pending.reject(Object.assign(new Error(message.error.message), { name: message.error.name }));
            else pending.resolve(message.result ?? 0);
          }
          this.#idle.push(worker);
          this.#dispatch();
        },
      );
      worker.on('error', (error) => {
        const pending = this.#running.get(worker);
        this.#running.delete(worker);
        pending?.reject(error);
        // A crashed worker is not replaced: fail what is queued rather than wait forever.
        this.#closed = true;
        for (const queued of this.#queue.splice(0)) queued.reject(error);
      });
      this.#workers.push(worker);
      this.#idle.push(worker);
    }
  }

  /** Runs a job on the next free worker; resolves with the output's non-finite count (a range phase: its answer). */
  run(job: ArenaTensorJob): Promise<RangeAnswer> {
    if (this.#closed) return Promise.reject(new Error('the merge worker pool is closed'));
    return new Promise((resolve, reject) => {
      this.#queue.push({ job, resolve, reject });
      this.#dispatch();
    });
  }

  #dispatch(): void {
    while (this.#idle.length > 0 && this.#queue.length > 0) {
      const worker = this.#idle.pop()!;
      const pending = this.#queue.shift()!;
      this.#running.set(worker, pending);
      worker.postMessage({ id: 0, job: pending.job });
    }
  }

  async close(): Promise<void> {
    this.#closed = true;
    for (const pending of this.#queue.splice(0)) pending.reject(new Error('the merge worker pool is closed'));
    await Promise.all(this.#workers.map((worker) => worker.terminate()));
  }
}
