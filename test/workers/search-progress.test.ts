// A search's parent while its grid points run: BullMQ keeps it in `waiting-children`, but the user sees it
// queued only until a point starts, then active with {phase: 'searching', pointsDone, pointsTotal, best}, the
// best being the finished point with the highest average validation accuracy (recomputed here from the points'
// own results). The points run in-process, one by one, so every view in between is observed; a cancel of the
// running search stops the points that have not run yet.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import {
  CANCELLED_REASON,
  type JobView,
  type MergeJobPayload,
  type MergeJobResult,
  type MergeProgress,
} from '../../src/queue/index.ts';
import { runMergeJob } from '../../workers/merge/run-merge-job.ts';
import { startMergeWorker } from '../../workers/merge-worker.ts';
import { processorDependencies, startApi, type TestApi } from '../api/harness.ts';
import { uploadEvaluationTasks, uploadMlp } from '../helpers/mlp-uploads.ts';
import { startTestRedis, type TestRedis } from '../helpers/redis.ts';
import { waitFor } from './fixtures.ts';

process.env.LORAFUSE_BACKEND ??= 'wasm';

describe('search progress while the grid points run', () => {
  let server: TestRedis;
  let api: TestApi;
  let body: (grid: Record<string, number[]>) => Record<string, unknown>;

  before(async () => {
    server = await startTestRedis();
    api = await startApi(server.url);
    const { model, adapters } = await uploadMlp(api);
    const tasks = await uploadEvaluationTasks(api, 24);
    body = (grid) => ({
      merge_method: 'task_arithmetic',
      base_model: model,
      models: adapters.map((id) => ({ adapter: id })),
      parameters: { lambda: 1, weight: 1 },
      evaluation: { tasks },
      search: { grid },
    });
  });
  after(async () => {
    await api.close();
    await server.stop();
  });

  const view = async (id: string): Promise<JobView> => {
    const response = await api.app.inject({ method: 'GET', url: `/v1/jobs/${id}` });
    assert.equal(response.statusCode, 200, response.body);
    return response.json() as JobView;
  };
  const submit = async (grid: Record<string, number[]>): Promise<string> => {
    const response = await api.app.inject({ method: 'POST', url: '/v1/merges', payload: body(grid) });
    assert.equal(response.statusCode, 202, response.body);
    return response.json().id as string;
  };
  /** Runs grid point `index` of `parent` here, as a merge worker would. */
  const runPoint = async (parent: string, index: number): Promise<MergeJobResult> => {
    const id = `${parent}-p${index}`;
    const data = (await api.jobs.queue('merge').getJob(id))!.data as MergeJobPayload;
    return runMergeJob({ id, data, updateProgress: async () => undefined }, processorDependencies(api));
  };
  const averageValidationAccuracy = (result: MergeJobResult) => {
    const own = (result.evaluations as Array<{ artifact: string; accuracy: number }>).filter(
      (e) => e.artifact === result.artifact.id,
    );
    assert.equal(own.length, 2, 'one validation evaluation per task');
    return (own[0].accuracy + own[1].accuracy) / 2;
  };

  it('shows the parent queued, then active with points done, of all, and the best so far', async () => {
    const lambdas = [0.25, 1, 4];
    const parent = await submit({ lambda: lambdas });
    const queued = await view(parent);
    assert.equal(queued.state, 'queued');
    assert.equal(queued.startedAt, null);

    const scores: number[] = [];
    for (const index of [0, 1, 2]) {
      const result = await runPoint(parent, index);
      scores.push(averageValidationAccuracy(result));
      const running = await view(parent);
      assert.equal(running.state, 'active', `after ${index + 1} point(s)`);
      assert.ok(running.startedAt, 'the search started with its first point');
      const progress = running.progress as unknown as MergeProgress;
      assert.equal(progress.phase, 'searching');
      assert.equal(progress.pointsDone, index + 1);
      assert.equal(progress.pointsTotal, lambdas.length);
      const bestIndex = scores.indexOf(Math.max(...scores));
      assert.deepEqual(progress.best, {
        index: bestIndex,
        params: { lambda: lambdas[bestIndex] },
        validationAverageAccuracy: scores[bestIndex],
      });
    }
    // A point that runs again (a retried attempt) replaces its own record: the count stays exact.
    await runPoint(parent, 1);
    assert.equal(((await view(parent)).progress as unknown as MergeProgress).pointsDone, 3);
  });

  it('a search cancelled while a merge worker runs its points ends cancelled', async () => {
    const parent = await submit({ lambda: [0.25, 0.5, 1, 2, 4] });
    const worker = startMergeWorker({
      redisUrl: server.url,
      prefix: api.jobs.prefix,
      dataDir: api.dataDir,
      concurrency: 1,
      settings: { lockDurationMs: 60_000, stalledIntervalMs: 60_000, shutdownGraceMs: 10_000 },
    });
    try {
      await waitFor(
        'a point to finish',
        async () => ((await view(parent)).progress as unknown as MergeProgress | null)?.pointsDone,
        300_000,
      );
      const cancel = await api.app.inject({ method: 'DELETE', url: `/v1/jobs/${parent}` });
      assert.equal(cancel.statusCode, 202, cancel.body);
      const ended = await waitFor(
        'the search to end',
        async () => {
          const current = await view(parent);
          return ['completed', 'failed', 'cancelled'].includes(current.state) ? current : null;
        },
        300_000,
      );
      assert.equal(ended.state, 'cancelled', JSON.stringify(ended));
      assert.equal(ended.error, null);
      const last = await waitFor(
        'the last point to end',
        async () => {
          const current = await view(`${parent}-p4`);
          return ['completed', 'failed', 'cancelled'].includes(current.state) ? current : null;
        },
        300_000,
      );
      assert.equal(last.state, 'cancelled', 'a point not yet run stops on its search’s cancel');
    } finally {
      await worker.close(10_000);
    }
  });

  it('cancelling a running search stops the points that have not run yet', async () => {
    const parent = await submit({ lambda: [0.5, 1] });
    await runPoint(parent, 0);
    const cancel = await api.app.inject({ method: 'DELETE', url: `/v1/jobs/${parent}` });
    assert.equal(cancel.statusCode, 202, cancel.body);
    assert.equal(cancel.json().state, 'active');
    assert.equal(cancel.json().cancelRequested, true);
    await assert.rejects(runPoint(parent, 1), (error: Error) => error.message === CANCELLED_REASON);
    assert.equal(((await view(parent)).progress as unknown as MergeProgress).pointsDone, 1);
  });
});
