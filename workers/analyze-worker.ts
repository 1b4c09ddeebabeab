// The analyze queue's worker host; its processor runs in a forked child.
import { type QueueWorkerHandle, type QueueWorkerOptions, startQueueWorker } from './queue-worker.ts';

const PROCESSOR = new URL('./analyze/processor.ts', import.meta.url);

export function startAnalyzeWorker(options: QueueWorkerOptions): QueueWorkerHandle {
  return startQueueWorker('analyze', PROCESSOR, options);
}
