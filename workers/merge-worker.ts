// The merge queue's worker host (see queue-worker.ts); its processor runs in a forked child.
import { type QueueWorkerHandle, type QueueWorkerOptions, startQueueWorker } from './queue-worker.ts';

export type MergeWorkerOptions = QueueWorkerOptions;
export type MergeWorkerHandle = QueueWorkerHandle;

const PROCESSOR = new URL('./merge/processor.ts', import.meta.url);

export function startMergeWorker(options: MergeWorkerOptions): MergeWorkerHandle {
  return startQueueWorker('merge', PROCESSOR, options);
}
