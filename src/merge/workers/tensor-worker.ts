// A merge worker thread: runs one encoded tensor job at a time and sends the encoded result back
// (transferred).
import { parentPort } from 'node:worker_threads';
import { type EncodedTensorJob, runEncodedTensorJob } from './tensor-job.ts';

const port = parentPort;
if (!port) throw new Error('tensor-worker.ts runs only as a worker thread');

port.on('message', (job: EncodedTensorJob) => {
  try {
    const result = runEncodedTensorJob(job);
    port.postMessage({ id: job.id, result }, [result.data.buffer as ArrayBuffer]);
  } catch (error) {
    port.postMessage({
      id: job.id,
      error: { name: (error as Error).name, message: (error as Error).message },
    });
  }
});
