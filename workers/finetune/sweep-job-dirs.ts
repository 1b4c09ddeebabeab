// A fine-tune's folder outlives its attempts on purpose (checkpoints for the next one) and the
// processor removes it when the job ends. A job failed by the stalled checker (its workers died
// twice) never reaches a processor again, so the worker host sweeps folders of jobs that are over.
import { readdir, rm } from 'node:fs/promises';
import path from 'node:path';
import { Job, type MinimalQueue } from 'bullmq';
import { finetuneJobDir } from './run-finetune-job.ts';

const OVER = new Set(['completed', 'failed', 'unknown']);

/** Removes the folders of finetune jobs that are finished or gone; returns their job ids. */
export async function sweepFinishedJobDirs(queue: MinimalQueue, dataDir: string): Promise<string[]> {
  const root = path.dirname(finetuneJobDir(dataDir, 'x'));
  let ids: string[];
  try {
    ids = await readdir(root);
  } catch {
    return [];
  }
  const removed: string[] = [];
  for (const id of ids) {
    const job = await Job.fromId(queue, id);
    const state = job ? await job.getState() : 'unknown';
    if (!OVER.has(state)) continue;
    await rm(path.join(root, id), { recursive: true, force: true });
    removed.push(id);
  }
  return removed;
}
