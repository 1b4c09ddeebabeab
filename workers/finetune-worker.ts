// The finetune queue's worker host. One job at a time per process: training uses every core the
// model runtime is given, and two runs side by side would only slow each other down.
import { type QueueWorkerHandle, type QueueWorkerOptions, startQueueWorker } from './queue-worker.ts';

const PROCESSOR = new URL('./finetune/processor.ts', import.meta.url);

export function startFinetuneWorker(options: Omit<QueueWorkerOptions, 'concurrency'>): QueueWorkerHandle {
  return startQueueWorker('finetune', PROCESSOR, { ...options, concurrency: 1 });
}
