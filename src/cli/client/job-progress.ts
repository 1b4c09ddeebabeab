// How `lorafuse client wait` shows a job: a bar redrawn in place on a terminal, and on anything else
// (a CI log, a pipe) one plain line per change of state or phase and per tenth of progress.
import type { Job } from '../../client/index.ts';

/** done/total from a job's progress object, whichever job type wrote it. */
export function progressFraction(progress: Job['progress']): { done: number; total: number } | null {
  if (!progress) return null;
  const pairs: Array<[string, string]> = [
    ['tensorsDone', 'tensorsTotal'],
    ['step', 'totalSteps'],
    ['done', 'total'],
  ];
  for (const [done, total] of pairs) {
    const d = progress[done];
    const t = progress[total];
    if (typeof d === 'number' && typeof t === 'number' && t > 0) return { done: d, total: t };
  }
  return null;
}

function describe(job: Job): string {
  const phase = typeof job.progress?.phase === 'string' ? ` ${job.progress.phase}` : '';
  const fraction = progressFraction(job.progress);
  const count = fraction ? ` ${fraction.done}/${fraction.total}` : '';
  const loss = typeof job.progress?.loss === 'number' ? ` loss ${job.progress.loss.toFixed(4)}` : '';
  const attempt = job.attempts > 1 ? ` (attempt ${job.attempts})` : '';
  return `${job.state}${phase}${count}${loss}${attempt}`;
}

export interface ProgressView {
  update(job: Job): void;
  /** Ends the bar's line on a terminal. */
  finish(): void;
}

export function progressView(
  stream: { write(text: string): unknown; isTTY?: boolean; columns?: number },
  options: { interactive?: boolean; started?: number } = {},
): ProgressView {
  const started = options.started ?? Date.now();
  const interactive = options.interactive ?? (stream.isTTY === true && !process.env.CI);
  const elapsed = () => `${((Date.now() - started) / 1000).toFixed(1).padStart(6)}s`;
  let lastLine = '';
  let lastTenth = -1;
  let drawn = false;
  return {
    update(job) {
      const fraction = progressFraction(job.progress);
      if (interactive) {
        const width = 24;
        const share = fraction
          ? Math.min(1, fraction.done / fraction.total)
          : job.state === 'completed'
            ? 1
            : 0;
        const filled = Math.round(share * width);
        const bar = `[${'#'.repeat(filled)}${'-'.repeat(width - filled)}] ${String(Math.round(share * 100)).padStart(3)}%`;
        const line = `${bar} ${job.id.slice(0, 16)} ${describe(job)} ${elapsed()}`;
        const columns = stream.columns ?? 100;
        stream.write(`\r${line.slice(0, columns - 1).padEnd(Math.min(columns - 1, lastLine.length))}`);
        lastLine = line;
        drawn = true;
        return;
      }
      const tenth = fraction ? Math.floor((10 * fraction.done) / fraction.total) : -1;
      const headline = `${job.state} ${typeof job.progress?.phase === 'string' ? job.progress.phase : ''}`;
      if (headline === lastLine && tenth === lastTenth) return;
      lastLine = headline;
      lastTenth = tenth;
      stream.write(`[${elapsed()}] ${job.id} ${describe(job)}\n`);
    },
    finish() {
      if (interactive && drawn) stream.write('\n');
    },
  };
}
