// An evaluated merge (no search) survives its worker: `lorafuse worker` (a real process, its whole process
// group) is SIGKILLed after the merged artifact is published and before the job completes (while it
// evaluates), which leaves an artifact no result names. Whatever happens next, the store ends with exactly the
// artifacts the job's result names: a retry on another worker deletes the killed attempt's artifact before
// merging again and completes with one merged adapter and one report; a job cancelled while its worker was
// dead ends `cancelled` with nothing of it left. The worker is frozen (SIGSTOP) while the test reads Redis, so
// what it sees is what the worker was doing when it died.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { jobKeys, type JobView, type MergeJobResult } from '../../src/queue/index.ts';
import { startApi, type TestApi } from '../api/harness.ts';
import { uploadEvaluationTasks, uploadMlp } from '../helpers/mlp-uploads.ts';
import { startTestRedis, type TestRedis } from '../helpers/redis.ts';
import { HANG_GUARD_MS } from '../helpers/wait.ts';
import { killWhenFrozen, spawnMergeWorkerProcess, type WorkerProcess } from '../helpers/worker-process.ts';
import { leftoverWorkDirs, waitFor } from './fixtures.ts';

describe('an evaluated merge whose worker is killed after publishing', () => {
  let server: TestRedis;
  let api: TestApi;
  let model: string;
  let adapters: string[];
  let tasks: Awaited<ReturnType<typeof uploadEvaluationTasks>>;
  const workers: WorkerProcess[] = [];

  before(async () => {
    server = await startTestRedis();
    api = await startApi(server.url);
    ({ model, adapters } = await uploadMlp(api));
    // Enough examples that evaluating takes a while: the window the kill aims at.
    tasks = await uploadEvaluationTasks(api, 512);
  });
  after(async () => {
    for (const worker of workers) await worker.kill();
    await api.close();
    await server.stop();
  });

  function spawnWorker(): WorkerProcess {
    const worker = spawnMergeWorkerProcess({
      redisUrl: server.url,
      prefix: api.jobs.prefix,
      dataDir: api.dataDir,
    });
    workers.push(worker);
    return worker;
  }

  const view = async (id: string): Promise<JobView> => {
    const response = await api.app.inject({ method: 'GET', url: `/v1/jobs/${id}` });
    assert.equal(response.statusCode, 200, response.body);
    return response.json() as JobView;
  };

  /** Submits the merge, runs it on a worker and SIGKILLs that worker once the merge is published, not completed. */
  async function killedAfterPublishing(): Promise<{ id: string; orphan: string; before: number }> {
    const before = await api.store.count('adapter');
    const reports = await api.store.count('report');
    const submitted = await api.app.inject({
      method: 'POST',
      url: '/v1/merges',
      payload: {
        merge_method: 'task_arithmetic',
        base_model: model,
        models: adapters.map((adapter) => ({ adapter })),
        parameters: { lambda: 0.7, weight: 1 },
        evaluation: { tasks },
      },
    });
    assert.equal(submitted.statusCode, 202, submitted.body);
    const id = submitted.json().id as string;
    const keys = jobKeys(api.jobs.prefix);
    const published = async () => {
      const [result, report] = await api.redis.mget(
        keys.published(id, 'result'),
        keys.published(id, 'report'),
      );
      return { result, report, state: (await view(id)).state };
    };
    const orphan = await killWhenFrozen(
      spawnWorker(),
      'the merge published and not yet completed',
      async () => {
        const seen = await published();
        assert.ok(
          seen.state === 'queued' || seen.state === 'active',
          `the merge ${seen.state} before the kill`,
        );
        return seen.result && !seen.report && seen.state === 'active' ? seen.result : null;
      },
    );
    assert.ok(await api.store.get(orphan), 'the killed attempt left its merged adapter behind');
    assert.equal(await api.store.count('adapter'), before + 1);
    assert.equal(await api.store.count('report'), reports, 'no report yet');
    return { id, orphan, before };
  }

  async function finished(id: string): Promise<JobView> {
    return waitFor(
      'the merge to end',
      async () => {
        const current = await view(id);
        return ['completed', 'failed', 'cancelled'].includes(current.state) ? current : null;
      },
      HANG_GUARD_MS,
    );
  }

  it('a retry on another worker deletes the orphan and completes with exactly its own artifacts', async () => {
    const { id, orphan, before } = await killedAfterPublishing();
    spawnWorker();
    const done = await finished(id);
    assert.equal(done.state, 'completed', JSON.stringify(done.error));
    const result = done.result as MergeJobResult;
    assert.equal(await api.store.get(orphan), null, 'the killed attempt’s artifact is gone');
    assert.notEqual(result.artifact.id, orphan);
    assert.ok(await api.store.get(result.artifact.id));
    assert.ok(await api.store.get(result.report!.id));
    assert.equal(
      await api.store.count('adapter'),
      before + 1,
      'one merged adapter: the one the result names',
    );
    assert.equal(await api.store.count('report'), 1, 'one report: the one the result names');
    assert.equal(await api.redis.get(jobKeys(api.jobs.prefix).published(id, 'result')), result.artifact.id);
    assert.deepEqual(leftoverWorkDirs(api.dataDir), []);
    for (const worker of workers.splice(0)) await worker.kill();
  });

  it('a job cancelled while its worker was dead ends cancelled, leaving nothing of it', async () => {
    const reportsBefore = await api.store.count('report');
    const { id, orphan, before } = await killedAfterPublishing();
    const cancelled = await api.app.inject({ method: 'DELETE', url: `/v1/jobs/${id}` });
    assert.ok([200, 202].includes(cancelled.statusCode), cancelled.body);
    // Whichever way it ends (a new worker's attempt finds the cancel, or it was still queued): nothing is left.
    spawnWorker();
    const done = await finished(id);
    assert.equal(done.state, 'cancelled', JSON.stringify(done));
    await waitFor(
      'the orphan to be deleted',
      async () => ((await api.store.get(orphan)) === null ? true : null),
      HANG_GUARD_MS,
    );
    assert.equal(await api.store.count('adapter'), before);
    assert.equal(await api.store.count('report'), reportsBefore);
    assert.equal(await api.redis.exists(jobKeys(api.jobs.prefix).published(id, 'result')), 0);
    assert.deepEqual(leftoverWorkDirs(api.dataDir), []);
  });
});
