import { Worker } from 'node:worker_threads';
import type { HostTensor } from '../io/host-tensors.ts';
import type { WorkerReply, WorkerRequest } from './messages.ts';

/** Worker threads, one wasm runtime each, answering gradient or evaluation requests for shards of data. */
export class RuntimePool {
  private constructor(private readonly workers: Worker[]) {}

  get size(): number {
    return this.workers.length;
  }

  static async start(count: number, init: Extract<WorkerRequest, { type: 'init' }>): Promise<RuntimePool> {
    const workers = Array.from({ length: count }, () => spawnWorker());
    const pool = new RuntimePool(workers);
    try {
      await Promise.all(workers.map((w) => request(w, init)));
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

  async close(): Promise<void> {
    await Promise.all(this.workers.map((w) => w.terminate()));
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
  return new Worker(bootstrap, { eval: true });
}

function request(worker: Worker, message: WorkerRequest): Promise<WorkerReply> {
  return new Promise((resolve, reject) => {
    const onMessage = (reply: WorkerReply) => {
      cleanup();
      if (reply.type === 'error') reject(new Error(`runtime worker failed: ${reply.message}`));
      else resolve(reply);
    };
    const onError = (error: Error) => {
      cleanup();
      reject(error);
    };
    const cleanup = () => {
      worker.off('message', onMessage);
      worker.off('error', onError);
    };
    worker.on('message', onMessage);
    worker.on('error', onError);
    worker.postMessage(message);
  });
}
