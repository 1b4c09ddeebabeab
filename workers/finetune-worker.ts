// The finetune queue's worker host. One job at a time per process by default: training uses every
// core the model runtime is given, and two runs side by side would only slow each other down (a
// machine with several GPUs may ask for more with --concurrency finetune=N). It also
// sweeps the folders of jobs that ended without a processor to clean up after them.
import type { Logger } from 'pino';
import { sweepFinishedJobDirs } from './finetune/sweep-job-dirs.ts';
import { type QueueWorkerHandle, type QueueWorkerOptions, startQueueWorker } from './queue-worker.ts';

const PROCESSOR = new URL('./finetune/processor.ts', import.meta.url);

export function startFinetuneWorker(
  options: Omit<QueueWorkerOptions, 'concurrency'> & { concurrency?: number },
): QueueWorkerHandle {
  const handle = startQueueWorker('finetune', PROCESSOR, {
    ...options,
    concurrency: options.concurrency ?? 1,
  });
  const sweep = (logger?: Logger) =>
    sweepFinishedJobDirs(handle.worker, options.dataDir)
      .then((ids) => ids.length > 0 && logger?.info({ jobs: ids }, 'removed folders of finished fine-tunes'))
      .catch((error: Error) => logger?.warn({ err: error.message }, 'fine-tune folder sweep failed'));
  handle.worker
    .waitUntilReady()
    .then(() => sweep(options.logger))
    .catch(() => undefined);
  // A job failed by the stalled checker shows up here first as stalled: sweep once it has settled.
  handle.worker.on('stalled', () => {
    setTimeout(() => sweep(options.logger), options.settings.stalledIntervalMs).unref();
  });
  return handle;
}
