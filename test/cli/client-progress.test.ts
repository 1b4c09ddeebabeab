// How `lorafuse client wait` draws a job: a bar redrawn in place on a terminal, plain lines otherwise,
// printed only when the state, the phase or the tenth of progress changes.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { progressFraction, progressView } from '../../src/cli/client/job-progress.ts';
import type { Job } from '../../src/client/index.ts';

const job = (state: Job['state'], progress: Record<string, unknown> | null): Job => ({
  id: 'job_0123456789abcdef',
  type: 'merge',
  state,
  progress,
  result: null,
  error: null,
  recipe: null,
  attempts: 1,
  createdAt: '2026-12-04T00:00:00.000Z',
  startedAt: null,
  finishedAt: null,
});

function sink(isTTY: boolean) {
  const writes: string[] = [];
  return { writes, stream: { isTTY, columns: 120, write: (text: string) => writes.push(text) } };
}

describe('job progress display', () => {
  it('reads done/total from merge, fine-tune and evaluation progress', () => {
    assert.deepEqual(progressFraction({ phase: 'merging', tensorsDone: 3, tensorsTotal: 12 }), {
      done: 3,
      total: 12,
    });
    assert.deepEqual(progressFraction({ step: 40, totalSteps: 100, loss: 0.5 }), { done: 40, total: 100 });
    assert.deepEqual(progressFraction({ done: 1, total: 4 }), { done: 1, total: 4 });
    assert.equal(progressFraction({ phase: 'planning', tensorsDone: 0, tensorsTotal: 0 }), null);
    assert.equal(progressFraction(null), null);
  });

  it('on a terminal: one line redrawn with a bar and a percentage, ended once', () => {
    const { writes, stream } = sink(true);
    const view = progressView(stream, { interactive: true });
    view.update(job('active', { phase: 'merging', tensorsDone: 6, tensorsTotal: 12 }));
    view.update(job('completed', { phase: 'done', tensorsDone: 12, tensorsTotal: 12 }));
    view.finish();
    assert.match(writes[0], /^\r\[#{12}-{12}\] {2}50% job_0123456789ab active merging 6\/12/);
    assert.match(writes[1], /^\r\[#{24}\] 100% .* completed done 12\/12/);
    assert.equal(writes[2], '\n');
  });

  it('in CI: plain lines, only when the state, phase or tenth of progress changes', () => {
    const { writes, stream } = sink(false);
    const view = progressView(stream, { interactive: false });
    view.update(job('queued', null));
    view.update(job('active', { phase: 'merging', tensorsDone: 1, tensorsTotal: 100 }));
    view.update(job('active', { phase: 'merging', tensorsDone: 5, tensorsTotal: 100 }));
    view.update(job('active', { phase: 'merging', tensorsDone: 12, tensorsTotal: 100 }));
    view.update(job('failed', { phase: 'merging', tensorsDone: 12, tensorsTotal: 100 }));
    view.finish();
    assert.equal(writes.length, 4, writes.join(''));
    assert.ok(writes.every((line) => line.endsWith('\n') && !line.includes('\r')));
    assert.match(writes[1], /job_0123456789abcdef active merging 1\/100\n$/);
    assert.match(writes[3], /failed merging 12\/100/);
  });
});
