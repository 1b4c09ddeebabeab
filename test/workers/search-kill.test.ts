// A search survives its worker: `lorafuse worker` (a real process, its whole process group) is SIGKILLed while
// the grid points run, another worker process takes over, and the search completes. Points that had completed
// are never run again; the one that was running (its artifact already stored) is retried; and the store ends with exactly the artifacts the
// result and the report name (the chosen merge and one report: nothing a killed attempt published is left),
// with no work folder behind.
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import { after, before, describe, it } from 'node:test';
import type { Report } from '../../src/eval/report/report-types.ts';
import {
  type JobView,
  type MergeJobResult,
  type MergeProgress,
  searchProgressKey,
} from '../../src/queue/index.ts';
import { REPORT_JSON } from '../../src/store/index.ts';
import { startApi, type TestApi } from '../api/harness.ts';
import { uploadEvaluationTasks, uploadMlp } from '../helpers/mlp-uploads.ts';
import { startTestRedis, type TestRedis } from '../helpers/redis.ts';
import { spawnWorkerProcess, type WorkerProcess } from '../helpers/worker-process.ts';
import { leftoverWorkDirs, waitFor } from './fixtures.ts';

const LAMBDAS = [0.25, 0.5, 0.75, 1, 1.25, 1.5, 1.75, 2];

describe('a search whose worker is killed mid-search', () => {
  let server: TestRedis;
  let api: TestApi;
  const workers: WorkerProcess[] = [];

  before(async () => {
    server = await startTestRedis();
    api = await startApi(server.url);
  });
  after(async () => {
    for (const worker of workers) await worker.kill();
    await api.close();
    await server.stop();
  });

  function spawnWorker(): WorkerProcess {
    const worker = spawnWorkerProcess(
      {
        REDIS_URL: server.url,
        LORAFUSE_QUEUE_PREFIX: api.jobs.prefix,
        LORAFUSE_DATA_DIR: api.dataDir,
        LORAFUSE_BACKEND: 'wasm',
        LOG_LEVEL: 'info',
        LORAFUSE_WORKER_LOCK_MS: '1000',
        LORAFUSE_WORKER_STALLED_MS: '500',
      },
      ['--queues', 'merge', '--concurrency', 'merge=1'],
    );
    workers.push(worker);
    return worker;
  }

  /** Job ids this worker's log shows it starting or completing (pino JSON lines from queue-worker.ts). */
  function logged(worker: WorkerProcess, event: 'started' | 'completed'): string[] {
    return worker
      .output()
      .split('\n')
      .filter((line) => line.includes(`merge job ${event}`))
      .map((line) => /"jobId":"([^"]+)"/.exec(line)?.[1])
      .filter((id): id is string => id !== undefined);
  }

  const view = async (id: string): Promise<JobView> => {
    const response = await api.app.inject({ method: 'GET', url: `/v1/jobs/${id}` });
    assert.equal(response.statusCode, 200, response.body);
    return response.json() as JobView;
  };

  it('completes on the next worker, running no completed point again and leaving no stray artifact', async () => {
    const { model, adapters } = await uploadMlp(api);
    const tasks = await uploadEvaluationTasks(api, 64);
    const submitted = await api.app.inject({
      method: 'POST',
      url: '/v1/merges',
      payload: {
        merge_method: 'task_arithmetic',
        base_model: model,
        models: adapters.map((id) => ({ adapter: id })),
        parameters: { lambda: 1, weight: 1 },
        evaluation: { tasks },
        search: { grid: { lambda: LAMBDAS } },
      },
    });
    assert.equal(submitted.statusCode, 202, submitted.body);
    const parent = submitted.json().id as string;
    const adaptersBefore = await api.store.count('adapter');

    const first = spawnWorker();
    const group = -(first.child.pid as number);
    // Kill it once a point has completed and the next one has stored its artifact and is evaluating it:
    // mid-search, and at the worst point of a point (published, not yet in any result). The test reads the
    // worker's state while the worker is frozen (SIGSTOP on its process group), so what it sees is what the
    // worker is doing when it dies; a worker that raced past that window is thawed and looked at again.
    const searchKey = searchProgressKey(api.jobs.prefix, parent);
    const snapshot = async () => {
      const fields = await api.redis.hgetall(searchKey);
      const recorded = LAMBDAS.flatMap((_, i) => (fields[`p${i}`] ? [i] : []));
      const inFlight = LAMBDAS.flatMap((_, i) => (fields[`published:p${i}`] && !fields[`p${i}`] ? [i] : []));
      return { recorded, inFlight };
    };
    const atKill = await waitFor(
      'a point done and the next one published',
      async () => {
        const seen = await snapshot();
        if (seen.recorded.length === 0 || seen.inFlight.length !== 1) return null;
        process.kill(group, 'SIGSTOP');
        // Let a command the worker sent just before it stopped reach Redis before looking again.
        await new Promise((resolve) => setTimeout(resolve, 100));
        const frozen = await snapshot();
        if (
          frozen.recorded.length > 0 &&
          frozen.recorded.length < LAMBDAS.length &&
          frozen.inFlight.length === 1
        )
          return frozen;
        process.kill(group, 'SIGCONT');
        return null;
      },
      300_000,
      10,
    );
    process.kill(group, 'SIGKILL');
    assert.equal((await first.exited).signal, 'SIGKILL');
    await first.drained;
    const completedBefore = logged(first, 'completed');
    assert.ok(!completedBefore.includes(parent), 'the search itself had not finished');
    const killedPoint = `${parent}-p${atKill.inFlight[0]}`;
    assert.ok(!completedBefore.includes(killedPoint), 'the published point had not completed');
    const progress = (await view(parent)).progress as unknown as MergeProgress;
    assert.equal(progress.pointsTotal, LAMBDAS.length);
    assert.equal(progress.pointsDone, atKill.recorded.length);

    const second = spawnWorker();
    const done = await waitFor(
      'the search to finish',
      async () => {
        const current = await view(parent);
        return ['completed', 'failed', 'cancelled'].includes(current.state) ? current : null;
      },
      600_000,
    );
    assert.equal(done.state, 'completed', JSON.stringify(done.error));

    // Completed points never ran again; the killed one and the rest ran on the second worker.
    const rerun = logged(second, 'started');
    for (const id of completedBefore) assert.ok(!rerun.includes(id), `${id} ran again`);
    assert.ok(rerun.includes(killedPoint), 'the killed point was retried');
    assert.ok(rerun.includes(parent));
    const points = LAMBDAS.map((_, i) => `${parent}-p${i}`);
    for (const id of points) {
      const ran = [...completedBefore, ...logged(second, 'completed')].filter((j) => j === id);
      assert.equal(ran.length, 1, `${id} completed exactly once`);
    }

    // Exactly the chosen merge and one report were added; the report names every point.
    const result = done.result as MergeJobResult;
    assert.equal(await api.store.count('adapter'), adaptersBefore + 1, 'one merged adapter: the chosen one');
    assert.ok(await api.store.get(result.artifact.id));
    assert.equal(await api.store.count('report'), 1);
    const record = (await api.store.get(result.report!.id))!;
    const report = JSON.parse(await fs.readFile(api.store.filePaths(record)[REPORT_JSON], 'utf8')) as Report;
    assert.equal(report.search!.points.length, LAMBDAS.length);
    assert.deepEqual(
      report.search!.points.map((p) => p.params.lambda),
      LAMBDAS,
    );
    assert.equal(report.answer.artifact, result.artifact.id);
    assert.deepEqual(report.search!.points[report.search!.chosen].params, result.chosen!.params);
    assert.deepEqual(leftoverWorkDirs(api.dataDir), []);
  });
});
