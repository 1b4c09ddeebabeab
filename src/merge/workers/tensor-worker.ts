// A merge worker thread: runs one arena job at a time against the merge's shared working set (given
// once, in workerData) and answers with the output's non-finite count (or a range phase's histograms);
// the tensors never move.
import { parentPort, workerData } from 'node:worker_threads';
import { type ArenaTensorJob, runArenaJob } from './tensor-job.ts';

const port = parentPort;
if (!port) throw new Error('tensor-worker.ts runs only as a worker thread');
const arena = (workerData as { arena: SharedArrayBuffer }).arena;

port.on('message', (message: { id: number; job: ArenaTensorJob }) => {
  try {
    port.postMessage({ id: message.id, result: runArenaJob(arena, message.job) });
  } catch (error) {
    port.postMessage({
      id: message.id,
      error: { name: (error as Error).name, message: (error as Error).message },
    });
  }
});
