// A pool of runtime worker threads (one wasm runtime each) for data-parallel training and evaluation, kept warm
// between jobs.
import { Worker } from 'node:worker_threads';
import { ModelInputError } from '../errors.ts';
import type { HostTensor } from '../io/host-tensors.ts';
import { backendLibrarySearchPath } from '../backend.ts';
import { simdKernelsEnabled } from '../simd/simd-kernels.ts';
import type { WorkerReply, WorkerRequest } from './messages.ts';

type InitRequest = Extract<WorkerRequest, { type: 'init' }>;

/** How long a runtime worker stays warm after its job unless the caller says (config.runtime.runtimeIdleMs). */
export const DEFAULT_RUNTIME_IDLE_MS = 60_000;

/** Warm runtime workers between jobs, by backend name; each ends itself after its pool's idle time. */
const idle = new Map<string, Array<{ worker: Worker; timer: NodeJS.Timeout }>>();
/** Workers that exited or failed outside a request: never parked, never reused. */
const broken = new WeakSet<Worker>();

function takeIdle(backend: string): Worker | undefined {
  const list = idle.get(backend) ?? [];
  for (let parked = list.pop(); parked; parked = list.pop()) {
    clearTimeout(parked.timer);
    if (broken.has(parked.worker)) continue; // it died while it waited
    parked.worker.ref();
    return parked.worker;
  }
  return undefined;
}

/** Parks a worker that finished its job (its session already reset), unref'd so it never holds the process open. */
function park(backend: string, worker: Worker, milliseconds: number): void {
  if (milliseconds === 0 || broken.has(worker)) {
    void worker.terminate();
    return;
  }
  const list = idle.get(backend) ?? [];
  idle.set(backend, list);
  const timer = setTimeout(() => {
    const at = list.findIndex((p) => p.worker === worker);
    if (at >= 0) list.splice(at, 1);
    void worker.terminate();
  }, milliseconds);
  timer.unref();
  worker.unref();
  list.push({ worker, timer });
}

/** Ends every warm idle worker now (at shutdown, and in tests that count threads). */
export async function endIdleRuntimes(): Promise<void> {
  const parked = [...idle.values()].flat();
  idle.clear();
  for (const p of parked) clearTimeout(p.timer);
  await Promise.all(parked.map((p) => p.worker.terminate()));
}

/** How many warm workers wait for a job (all backends). */
export function idleRuntimeCount(): number {
  return [...idle.values()].reduce((n, list) => n + list.length, 0);
}

/**
 * Worker threads, one wasm runtime each, answering gradient or evaluation requests for shards of data. A pool
 * lasts one job: start() takes warm workers left by earlier jobs before it spawns new ones, and close() hands its
 * workers back, their model and tensors released.
 */
export class RuntimePool {
  private closed = false;

  private constructor(
    private readonly workers: Worker[],
    private readonly backend: string,
    private readonly idleMs: number,
  ) {}

  get size(): number {
    return this.workers.length;
  }

  /** `idleMs`: how long the workers stay warm for the next pool after this one closes (0: they end with it). */
  static async start(
    count: number,
    init: InitRequest,
    idleMs = DEFAULT_RUNTIME_IDLE_MS,
  ): Promise<RuntimePool> {
    const backend = init.backend ?? '';
    const workers = Array.from({ length: count }, () => takeIdle(backend) ?? spawnWorker());
    const pool = new RuntimePool(workers, backend, idleMs);
    try {
      // Threads follow this thread's SIMD setting and library search path unless the caller says otherwise.
      const asThisThread = {
        ...init,
        simdKernels: init.simdKernels ?? simdKernelsEnabled(),
        librarySearchPath: init.librarySearchPath ?? backendLibrarySearchPath(),
      };
      await Promise.all(workers.map((w) => request(w, asThisThread)));
    } catch (error) {
      await pool.close();
      throw error;
    }
    return pool;
  }

  /** Gradients of each shard (in order) for the given variable values. */
  gradients(
    values: Record<string, Float32Array>,
    shards: Array<{ inputs: Map<string, HostTensor>; labels: Int32Array }>,
  ): Promise<Array<{ loss: number; grads: Record<string, Float32Array> }>> {
    return Promise.all(
      shards.map(async (shard, i) => {
        const reply = await request(this.workers[i], {
          type: 'grads',
          values,
          inputs: Object.fromEntries(shard.inputs),
          labels: shard.labels,
        });
        if (reply.type !== 'grads') throw new Error(`worker ${i} answered ${reply.type}`);
        return reply;
      }),
    );
  }

  /** Loss sum and argmax predictions of each shard (in order). */
  evaluate(
    shards: Array<{ inputs: Map<string, HostTensor>; labels: Int32Array }>,
  ): Promise<Array<{ lossSum: number; predictions: Int32Array }>> {
    return Promise.all(
      shards.map(async (shard, i) => {
        const reply = await request(this.workers[i], {
          type: 'evaluate',
          inputs: Object.fromEntries(shard.inputs),
          labels: shard.labels,
        });
        if (reply.type !== 'evaluated') throw new Error(`worker ${i} answered ${reply.type}`);
        return reply;
      }),
    );
  }

  /** Releases every worker's session and parks the workers warm (or ends them when idleMs is 0). */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const worker of this.workers) {
      if (broken.has(worker)) {
        void worker.terminate();
        continue;
      }
      worker.postMessage({ type: 'reset' } satisfies WorkerRequest);
      park(this.backend, worker, this.idleMs);
    }
  }
}

/**
 * Starts runtime-worker. From TypeScript sources the worker first registers tsx's loader itself: a worker does
 * not reliably inherit the parent's --import hooks (node --test, Node 20).
 */
function spawnWorker(): Worker {
  const url = new URL('./runtime-worker.ts', import.meta.url);
  const bootstrap = `import(${JSON.stringify(import.meta.resolve('tsx/esm/api'))})
    .then((api) => api.register())
    .then(() => import(${JSON.stringify(url.href)}))`;
  const worker = new Worker(bootstrap, { eval: true });
  worker.on('error', () => broken.add(worker));
  worker.on('exit', () => broken.add(worker));
  return worker;
}

function request(worker: Worker, message: WorkerRequest): Promise<WorkerReply> {
  return new Promise((resolve, reject) => {
    const onMessage = (reply: WorkerReply) => {
      cleanup();
      if (reply.type === 'error') {
        const message = `runtime worker failed: ${reply.message}`;
        reject(reply.name === 'ModelInputError' ? new ModelInputError(message) : new Error(message));
      } else resolve(reply);
    };
    const onError = (error: Error) => {
      cleanup();
      reject(error);
    };
    const onExit = (code: number) => onError(new Error(`runtime worker exited (code ${code}) mid-request`));
    const cleanup = () => {
      worker.off('message', onMessage);
      worker.off('error', onError);
      worker.off('exit', onExit);
    };
    worker.on('message', onMessage);
    worker.on('error', onError);
    worker.on('exit', onExit);
    worker.postMessage(message);
  });
}
