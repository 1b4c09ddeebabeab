// The evaluate queue's sandboxed processor (forked child, like the merge and finetune ones).
import type { SandboxedJob } from 'bullmq';
import type { EvaluateJobPayload, EvaluateJobResult } from '../../src/queue/index.ts';
import { processorDependencies } from '../processor-dependencies.ts';
import { evaluateWorkDir, runEvaluateJob } from './run-evaluate-job.ts';
import { rmSync } from 'node:fs';

const activeWorkDirs = new Set<string>();

// When the worker host dies the IPC channel closes: stop at once and leave no work folder behind.
process.once('disconnect', () => {
  for (const dir of activeWorkDirs) rmSync(dir, { recursive: true, force: true });
  process.exit(1);
});

export default async function processEvaluateJob(
  job: SandboxedJob<EvaluateJobPayload, EvaluateJobResult>,
  _token?: string,
  signal?: AbortSignal,
): Promise<EvaluateJobResult> {
  const deps = await processorDependencies('evaluate', job.data);
  const id = job.id as string;
  const workDir = evaluateWorkDir(deps.dataDir, id);
  activeWorkDirs.add(workDir);
  try {
    return await runEvaluateJob(
      {
        id,
        data: job.data,
        attemptsMade: job.attemptsMade ?? 0,
        maxAttempts: job.opts?.attempts ?? 1,
        updateProgress: (progress) => job.updateProgress(progress),
      },
      { ...deps, signal },
    );
  } finally {
    activeWorkDirs.delete(workDir);
  }
}
