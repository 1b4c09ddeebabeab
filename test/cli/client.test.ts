// `lorafuse client` end to end against a running service: a real redis-server, the API listening on a
// port and a sandboxed merge worker; the command runs as its own process, as a CI job would run it.
import assert from 'node:assert/strict';
import { copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { buildApp, type LorafuseApp } from '../../src/api/index.ts';
import { loadConfig } from '../../src/config.ts';
import { createApiRedis, JobService } from '../../src/queue/index.ts';
import { AccessStore, ArtifactStore } from '../../src/store/index.ts';
import { type MergeWorkerHandle, startMergeWorker } from '../../workers/merge-worker.ts';
import { compareTensors, goldenCaseDir, readCaseJson, readGoldenTensors } from '../helpers/golden.ts';
import { startTestRedis, type TestRedis, tempDir, uniquePrefix } from '../helpers/redis.ts';
import { type CliResult, runCli } from '../helpers/run-cli.ts';

/** A loopback port nothing listens on (taken, then released). */
function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const probe = createServer();
    probe.once('error', reject);
    probe.listen(0, '127.0.0.1', () => {
      const { port } = probe.address() as { port: number };
      probe.close(() => resolve(port));
    });
  });
}

const CASE = 'mergekit_task_arithmetic';

describe('lorafuse client against a running service', () => {
  let server: TestRedis;
  let data: { dir: string; remove(): void };
  let app: LorafuseApp;
  let store: ArtifactStore;
  let jobs: JobService;
  let worker: MergeWorkerHandle;
  let url: string;
  /** A read/write key of the default project: the service runs with auth on, as `serve` does. */
  let apiKey: string;

  before(async () => {
    server = await startTestRedis();
    data = tempDir('lorafuse-client-e2e');
    const prefix = uniquePrefix('client');
    const config = loadConfig({
      LORAFUSE_DATA_DIR: path.join(data.dir, 'service'),
      LORAFUSE_QUEUE_PREFIX: prefix,
      REDIS_URL: server.url,
    });
    const redis = createApiRedis(server.url);
    store = new ArtifactStore({ redis, dataDir: config.dataDir, prefix });
    await store.init();
    jobs = new JobService({ redis, prefix });
    app = await buildApp({ config, redis, store, jobs, logger: false });
    apiKey = (
      await new AccessStore(redis, prefix).createKey({ project: 'default', scopes: ['read', 'write'] })
    ).token;
    await app.listen({ port: 0, host: '127.0.0.1' });
    const address = app.server.address() as { port: number };
    url = `http://127.0.0.1:${address.port}`;
    worker = startMergeWorker({
      redisUrl: server.url,
      prefix,
      dataDir: config.dataDir,
      concurrency: 1,
      settings: { lockDurationMs: 30_000, stalledIntervalMs: 30_000, shutdownGraceMs: 10_000 },
    });
  });
  after(async () => {
    await worker.close(10_000);
    await app.close();
    await server.stop();
    data.remove();
  });

  function client(args: string[], env: Record<string, string> = {}): Promise<CliResult> {
    return runCli(['client', ...args], {
      cwd: data.dir,
      env: { LORAFUSE_URL: url, LORAFUSE_API_KEY: apiKey, CI: 'true', ...env },
    });
  }

  /** The golden case's files and recipe in a folder of their own, as a repository would hold them. */
  function checkout(name: string): string {
    const dir = path.join(data.dir, name);
    mkdirSync(dir, { recursive: true });
    for (const file of readdirSync(goldenCaseDir(CASE))) {
      if (file.endsWith('.safetensors') || file === 'recipe.yaml') {
        copyFileSync(path.join(goldenCaseDir(CASE), file), path.join(dir, file));
      }
    }
    return dir;
  }

  it('merge RECIPE --wait --download: uploads the local inputs, merges, downloads the reference result', async () => {
    const repo = checkout('repo');
    const out = path.join(data.dir, 'out');
    const run = await client(['merge', path.join(repo, 'recipe.yaml'), '--wait', '--download', out]);
    assert.equal(run.code, 0, run.stderr);
    assert.equal((run.stderr.match(/^uploaded /gm) ?? []).length, 4, run.stderr);
    assert.match(run.stderr, /queued merge job_/);
    assert.match(run.stderr, /completed/);
    assert.match(run.stderr, /downloaded model\.safetensors \(\d+ bytes, sha256 checked\)/);
    const job = JSON.parse(run.stdout);
    assert.equal(job.state, 'completed');
    assert.equal(job.recipe.merge_method, 'task_arithmetic');
    assert.match(job.recipe.base_model, /^mdl_/);

    const expected = await readGoldenTensors(path.join(repo, 'expected.safetensors'));
    const actual = await readGoldenTensors(path.join(out, 'model.safetensors'));
    assert.deepEqual([...actual.keys()].sort(), [...expected.keys()].sort());
    for (const [name, tensor] of expected) {
      assert.equal(
        compareTensors(actual.get(name)!.data, tensor.data, readCaseJson(CASE).tolerance),
        null,
        name,
      );
    }
    assert.equal(
      readdirSync(out).some((file) => file.endsWith('.part')),
      false,
    );

    // The same inputs again (another checkout): nothing is uploaded, the merge runs on the stored ids.
    const modelsBefore = await store.count('model');
    const again = await client(['merge', path.join(checkout('repo-again'), 'recipe.yaml'), '--wait']);
    assert.equal(again.code, 0, again.stderr);
    assert.doesNotMatch(again.stderr, /^uploaded /m);
    assert.equal((again.stderr.match(/already stored as mdl_/g) ?? []).length, 4, again.stderr);
    assert.equal(await store.count('model'), modelsBefore + 1, 'only the new result was stored');
    assert.equal(JSON.parse(again.stdout).recipe.base_model, job.recipe.base_model);
  });

  it('upload, download, jobs: dedup by digest, sha256-checked files, JSON on stdout', async () => {
    const repo = checkout('upload');
    const first = await client(['upload', 'model', path.join(repo, 'm1.safetensors')]);
    assert.equal(first.code, 0, first.stderr);
    const uploaded = JSON.parse(first.stdout);
    const second = await client(['upload', 'model', path.join(repo, 'm1.safetensors')]);
    assert.equal(second.code, 0, second.stderr);
    assert.equal(JSON.parse(second.stdout).id, uploaded.id);
    assert.equal(JSON.parse(second.stdout).uploaded, false);
    assert.match(second.stderr, /already holds this content/);

    const dir = path.join(data.dir, 'downloaded');
    const fetched = await client(['download', uploaded.id, dir]);
    assert.equal(fetched.code, 0, fetched.stderr);
    assert.deepEqual(
      readFileSync(path.join(dir, 'model.safetensors')),
      readFileSync(path.join(repo, 'm1.safetensors')),
    );

    const listed = await client(['jobs', '--type', 'merge', '--limit', '5']);
    assert.equal(listed.code, 0, listed.stderr);
    assert.ok(JSON.parse(listed.stdout).items.every((job: { type: string }) => job.type === 'merge'));

    const missing = await client(['upload', 'adapter', path.join(repo, 'nope')]);
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /nope does not exist/);
  });

  it('wait: exit 1 with the error of a failed job; 124 on --timeout; report: 404 named until the route exists', async () => {
    const failing = await jobs.enqueueMerge({
      recipe: { merge_method: 'no_such_method', models: [{ model: 'mdl_x' }], seed: 1 },
      inputs: [],
      seed: 1,
    });
    const failed = await client(['wait', failing.id]);
    assert.equal(failed.code, 1, failed.stderr);
    assert.match(failed.stderr, new RegExp(`job ${failing.id} failed: \\w+: .+`));
    assert.equal(JSON.parse(failed.stdout).state, 'failed');

    // A job nobody takes: a queue of its own kind does not exist, so block the worker's queue with a
    // paused queue instead, and the wait must give up at its timeout.
    await jobs.queue('merge').pause();
    try {
      const stuck = await jobs.enqueueMerge({
        recipe: { merge_method: 'linear', models: [{ model: 'mdl_x' }], seed: 1 },
        inputs: [],
        seed: 1,
      });
      const timedOut = await client(['wait', stuck.id, '--timeout', '1']);
      assert.equal(timedOut.code, 124, timedOut.stderr);
      assert.match(timedOut.stderr, /timed out: job .* still queued/);
      await jobs.cancel(stuck.id);
    } finally {
      await jobs.queue('merge').resume();
    }

    const report = await client(['report', failing.id]);
    if (report.code === 0) {
      assert.equal(typeof JSON.parse(report.stdout), 'object');
    } else {
      assert.equal(report.code, 1);
      assert.match(report.stderr, new RegExp(`no report for job ${failing.id}`));
    }
  });

  it('sends the key from LORAFUSE_API_KEY or --api-key; without one the service answers 401, named', async () => {
    const without = await client(['jobs'], { LORAFUSE_API_KEY: '' });
    assert.equal(without.code, 1);
    assert.match(without.stderr, /401/);
    assert.match(without.stderr, /needs an API key/);
    const flagged = await client(['jobs', '--api-key', apiKey, '--limit', '1'], { LORAFUSE_API_KEY: '' });
    assert.equal(flagged.code, 0, flagged.stderr);
    assert.ok(Array.isArray(JSON.parse(flagged.stdout).items));
    // The flag wins over the environment.
    const overridden = await client(['jobs', `--api-key=${apiKey}`], { LORAFUSE_API_KEY: 'lfk_wrong' });
    assert.equal(overridden.code, 0, overridden.stderr);
    const wrong = await client(['jobs', '--api-key', 'lfk_wrong']);
    assert.equal(wrong.code, 1);
    assert.match(wrong.stderr, /not valid/);
    assert.ok(!wrong.stderr.includes(apiKey), 'the configured key is never printed');
    const missing = await client(['jobs', '--api-key']);
    assert.equal(missing.code, 2);
    assert.match(missing.stderr, /--api-key needs a value/);
  });

  it('names a missing or malformed LORAFUSE_URL and an unreachable service plainly', async () => {
    const none = await client(['jobs'], { LORAFUSE_URL: '' });
    assert.equal(none.code, 2);
    assert.match(none.stderr, /LORAFUSE_URL must name the service/);
    const closed = await freePort();
    const unreachable = await client(['jobs'], { LORAFUSE_URL: `http://127.0.0.1:${closed}` });
    assert.equal(unreachable.code, 1);
    assert.match(
      unreachable.stderr,
      new RegExp(`cannot reach http://127\\.0\\.0\\.1:${closed}: ECONNREFUSED`),
    );
    const typo = await client(['mrege']);
    assert.equal(typo.code, 2);
    assert.match(typo.stderr, /did you mean "merge"/);
    assert.equal(existsSync(path.join(data.dir, 'never')), false);
    writeFileSync(path.join(data.dir, 'list.yaml'), '- not a recipe\n');
    const bad = await client(['merge', path.join(data.dir, 'list.yaml')]);
    assert.equal(bad.code, 1);
    assert.match(bad.stderr, /is not a recipe/);
  });
});
