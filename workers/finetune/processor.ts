// The finetune queue's sandboxed processor: BullMQ forks a child that imports this file, so the
// training loop never starves the parent's lock renewal. Settings come from the environment the
// worker host passes down (REDIS_URL, LORAFUSE_DATA_DIR, LORAFUSE_QUEUE_PREFIX, LORAFUSE_BACKEND).
import type { SandboxedJob } from 'bullmq';
import type { FinetuneJobPayload, FinetuneJobResult } from '../../src/queue/index.ts';
import { jobPublications } from '../job-publication.ts';
import { processorDependencies } from '../processor-dependencies.ts';
import { runFinetuneJob } from './run-finetune-job.ts';

// When the worker host dies the IPC channel closes: stop at once. The job folder (its checkpoints)
// stays, so the attempt that recovers the stalled job resumes where this one was.
process.once('disconnect', () => process.exit(1));

export default async function processFinetuneJob(
  job: SandboxedJob<FinetuneJobPayload, FinetuneJobResult>,
  token?: string,
  signal?: AbortSignal,
): Promise<FinetuneJobResult> {
  const deps = await processorDependencies('finetune', job.data);
  return runFinetuneJob(
    {
      id: job.id as string,
      data: job.data,
      attemptsMade: job.attemptsMade ?? 0,
      maxAttempts: job.opts?.attempts ?? 1,
      updateProgress: (progress) => job.updateProgress(progress),
    },
    { ...deps, signal, publications: jobPublications(deps.prefix, 'finetune', job.id as string, token) },
  );
}
