// A merge worker thread: runs one tensor job at a time and sends the result back (transferred).
import { parentPort } from 'node:worker_threads';
import { releaseScratch } from '../kernels/scratch.ts';
import { runTensorJob, type TensorJob } from './tensor-job.ts';

const port = parentPort;
if (!port) throw new Error('tensor-worker.ts runs only as a worker thread');

port.on('message', (job: TensorJob | { release: true }) => {
  if ('release' in job) {
    releaseScratch();
    return;
  }
  try {
    const out = runTensorJob(job);
    port.postMessage({ id: job.id, out }, [out.buffer as ArrayBuffer]);
  } catch (error) {
    port.postMessage({
      id: job.id,
      error: { name: (error as Error).name, message: (error as Error).message },
    });
  }
});
