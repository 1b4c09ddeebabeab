// The analyze queue's sandboxed processor (forked child, like the other queues').
import { rmSync } from 'node:fs';
import type { SandboxedJob } from 'bullmq';
import type { AnalyzeJobPayload, AnalyzeJobResult } from '../../src/queue/index.ts';
import { jobPublications } from '../job-publication.ts';
import { processorDependencies } from '../processor-dependencies.ts';
import { analyzeWorkDir, runAnalyzeJob } from './run-analyze-job.ts';

const activeWorkDirs = new Set<string>();

// When the worker host dies the IPC channel closes: stop at once and leave no work folder behind.
process.once('disconnect', () => {
  for (const dir of activeWorkDirs) rmSync(dir, { recursive: true, force: true });
  process.exit(1);
});

export default async function processAnalyzeJob(
  job: SandboxedJob<AnalyzeJobPayload, AnalyzeJobResult>,
  token?: string,
  signal?: AbortSignal,
): Promise<AnalyzeJobResult> {
  const deps = await processorDependencies('analyze', job.data);
  const id = job.id as string;
  const workDir = analyzeWorkDir(deps.dataDir, id);
  activeWorkDirs.add(workDir);
  try {
    return await runAnalyzeJob(
      { id, data: job.data, updateProgress: (progress) => job.updateProgress(progress) },
      { ...deps, signal, publications: jobPublications(deps.prefix, 'analyze', id, token) },
    );
  } finally {
    activeWorkDirs.delete(workDir);
  }
}
