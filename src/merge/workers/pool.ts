// A worker_threads pool for per-tensor merge work: one job per worker at a time, results in the
// order asked for by the caller. Inputs are transferred when the caller owns their whole buffer
// (copied otherwise); the output comes back transferred.
import { Worker } from 'node:worker_threads';
import type { EncodedTensorJob, EncodedTensorResult } from './tensor-job.ts';

interface Pending {
  job: EncodedTensorJob;
  resolve: (result: EncodedTensorResult) => void;
  reject: (error: Error) => void;
}

const BOOTSTRAP = new URL('./worker-bootstrap.mjs', import.meta.url);
const ENTRY = new URL('./tensor-worker.ts', import.meta.url).href;

/** ArrayBuffers that belong to one typed array alone (not a Buffer pool slab), each listed once. */
function transferables(job: EncodedTensorJob): ArrayBuffer[] {
  const buffers = new Set<ArrayBuffer>();
  for (const input of job.inputs) {
    if (!input.tensor) continue;
    const { buffer, byteOffset, byteLength } = input.tensor.data;
    if (buffer instanceof ArrayBuffer && byteOffset === 0 && byteLength === buffer.byteLength)
      buffers.add(buffer);
  }
  return [...buffers];
}

export class MergeWorkerPool {
  readonly size: number;
  readonly #workers: Worker[] = [];
  readonly #idle: Worker[] = [];
  readonly #queue: Pending[] = [];
  readonly #running = new Map<Worker, Pending>();
  #closed = false;

  constructor(size: number) {
    this.size = size;
    for (let i = 0; i < size; i++) {
      const worker = new Worker(BOOTSTRAP, { workerData: { entry: ENTRY } });
      worker.on(
        'message',
        (message: {
          id: number;
          result?: EncodedTensorResult;
          error?: { name: string; message: string };
        }) => {
          const pending = this.#running.get(worker);
          this.#running.delete(worker);
          if (pending) {
            if (message.error)
              pending.reject(Object.assign(new Error(message.error.message), { name: message.error.name }));
            else pending.resolve(message.result!);
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

  run(job: EncodedTensorJob): Promise<EncodedTensorResult> {
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
      worker.postMessage(pending.job, transferables(pending.job));
    }
  }

  async close(): Promise<void> {
    this.#closed = true;
    for (const pending of this.#queue.splice(0)) pending.reject(new Error('the merge worker pool is closed'));
    await Promise.all(this.#workers.map((worker) => worker.terminate()));
  }
}
