// The evaluate queue's worker host; its processor runs in a forked child.
import { type QueueWorkerHandle, type QueueWorkerOptions, startQueueWorker } from './queue-worker.ts';

const PROCESSOR = new URL('./evaluate/processor.ts', import.meta.url);

export function startEvaluateWorker(options: QueueWorkerOptions): QueueWorkerHandle {
  return startQueueWorker('evaluate', PROCESSOR, options);
}
