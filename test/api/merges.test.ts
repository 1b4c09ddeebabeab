import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import path from 'node:path';
import { after, afterEach, before, beforeEach, describe, it } from 'node:test';
import { goldenCaseDir } from '../helpers/golden.ts';
import { startTestRedis, type TestRedis } from '../helpers/redis.ts';
import { writeAdapterFolder, writeModelFolder } from '../store/fixtures.ts';
import { filePart, multipart, startApi, type TestApi } from './harness.ts';

const CASE = goldenCaseDir('mergekit_task_arithmetic');

describe('merges and jobs API', () => {
  let server: TestRedis;
  let api: TestApi;
  let ids: { base: string; m0: string; m1: string; m2: string };

  before(async () => {
    server = await startTestRedis();
  });
  after(async () => {
    await server.stop();
  });
  beforeEach(async () => {
    api = await startApi(server.url);
    const uploaded: Record<string, string> = {};
    for (const name of ['base', 'm0', 'm1', 'm2']) {
      const weights = await fs.readFile(path.join(CASE, `${name}.safetensors`));
      const response = await api.app.inject({
        method: 'POST',
        url: '/v1/models',
        ...multipart([filePart('model.safetensors', weights)]),
      });
      assert.equal(response.statusCode, 201, response.body);
      uploaded[name] = response.json().id;
    }
    ids = uploaded as typeof ids;
  });
  afterEach(async () => {
    await api.close();
  });

  /** The golden case's recipe with artifact ids in place of its file names. */
  function goldenRecipe(): Record<string, unknown> {
    return {
      merge_method: 'task_arithmetic',
      base_model: ids.base,
      models: [
        { model: ids.m0, parameters: { weight: 1.0 } },
        { model: ids.m1, parameters: { weight: 1.0 } },
        { model: ids.m2, parameters: { weight: 1.0 } },
      ],
      parameters: { lambda: 0.7 },
      dtype: 'float32',
    };
  }

  function postMerge(body: unknown, headers: Record<string, string> = {}) {
    return api.app.inject({ method: 'POST', url: '/v1/merges', payload: body as object, headers });
  }

  async function expectProblem(body: unknown, status: number, type: string) {
    const jobsBefore = (await api.jobs.list({ limit: 100 })).items.length;
    const response = await postMerge(body);
    assert.equal(response.statusCode, status, response.body);
    assert.equal(response.headers['content-type'], 'application/problem+json; charset=utf-8');
    const problem = response.json();
    assert.equal(problem.type, `https://lorafuse.dev/problems/${type}`);
    assert.equal((await api.jobs.list({ limit: 100 })).items.length, jobsBefore, 'nothing was queued');
    return problem;
  }

  it('queues the golden task_arithmetic recipe with artifact ids and a chosen seed', async () => {
    const response = await postMerge(goldenRecipe());
    assert.equal(response.statusCode, 202, response.body);
    const job = response.json();
    assert.equal(response.headers.location, `/v1/jobs/${job.id}`);
    assert.equal(job.type, 'merge');
    assert.equal(job.state, 'queued');
    assert.equal(job.recipe.merge_method, 'task_arithmetic');
    assert.equal(job.recipe.base_model, ids.base);
    assert.ok(Number.isInteger(job.recipe.seed), 'a seed was chosen and written into the recipe');

    const fetched = await api.app.inject({ method: 'GET', url: `/v1/jobs/${job.id}` });
    assert.equal(fetched.statusCode, 200);
    assert.equal(fetched.json().id, job.id);
    assert.equal(fetched.json().recipe.seed, job.recipe.seed);
    // The response schema must not drop anything the job service reports.
    assert.deepEqual(fetched.json(), JSON.parse(JSON.stringify(await api.jobs.get(job.id))));

    const queued = await api.jobs.jobsUsingArtifact(ids.m1);
    assert.deepEqual(queued, [job.id]);
    const refused = await api.app.inject({ method: 'DELETE', url: `/v1/models/${ids.base}` });
    assert.equal(refused.statusCode, 409);
  });

  it('a merge queued while an input is being deleted is cancelled and refused; that delete is not blocked', async () => {
    // A DELETE of m1 that has marked it and is checking for jobs: the merge must not survive it.
    const deleting = `${api.config.queuePrefix}:deleting:${ids.m1}`;
    await api.redis.set(deleting, '1');
    const response = await postMerge(goldenRecipe());
    assert.equal(response.statusCode, 422, response.body);
    assert.equal(response.json().type, 'https://lorafuse.dev/problems/unknown-artifact');
    assert.deepEqual(response.json().artifacts, [ids.m1]);
    assert.deepEqual(await api.jobs.jobsUsingArtifact(ids.m1), []);
    const jobs = (await api.app.inject({ method: 'GET', url: '/v1/jobs?type=merge' })).json();
    assert.deepEqual(
      jobs.items.map((job: { state: string }) => job.state),
      ['cancelled'],
    );
    // A second DELETE while the first holds the mark is refused, not run twice.
    const second = await api.app.inject({ method: 'DELETE', url: `/v1/models/${ids.m1}` });
    assert.equal(second.statusCode, 409, second.body);
    await api.redis.del(deleting);
    const done = await api.app.inject({ method: 'DELETE', url: `/v1/models/${ids.m1}` });
    assert.equal(done.statusCode, 204, done.body);
    assert.equal(await api.redis.exists(deleting), 0, 'the delete mark is released');
    assert.deepEqual(await api.store.unavailable([ids.m0, ids.m1]), [ids.m1]);
  });

  it('keeps a seed the recipe gives', async () => {
    const response = await postMerge({ ...goldenRecipe(), seed: 1234 });
    assert.equal(response.statusCode, 202, response.body);
    assert.equal(response.json().recipe.seed, 1234);
  });

  it('returns the same job for the same Idempotency-Key and body, 409 for another body', async () => {
    const headers = { 'idempotency-key': 'ci-run-42' };
    const first = await postMerge(goldenRecipe(), headers);
    assert.equal(first.statusCode, 202, first.body);
    const again = await postMerge(goldenRecipe(), headers);
    assert.equal(again.statusCode, 200, again.body);
    assert.equal(again.json().id, first.json().id);
    assert.equal(again.headers.location, `/v1/jobs/${first.json().id}`);

    const other = await postMerge({ ...goldenRecipe(), parameters: { lambda: 0.5 } }, headers);
    assert.equal(other.statusCode, 409, other.body);
    assert.equal(other.json().type, 'https://lorafuse.dev/problems/idempotency-key-reused');
    assert.equal((await api.jobs.list({ limit: 100 })).items.length, 1);
  });

  it('queues a merge of adapters (their weights opened through the store)', async () => {
    const adapters: string[] = [];
    for (const name of ['a', 'b']) {
      const dir = await writeAdapterFolder(path.join(api.workDir, name));
      const parts = await Promise.all(
        (await fs.readdir(dir)).map(async (file) => filePart(file, await fs.readFile(path.join(dir, file)))),
      );
      const response = await api.app.inject({ method: 'POST', url: '/v1/adapters', ...multipart(parts) });
      assert.equal(response.statusCode, 201, response.body);
      adapters.push(response.json().id);
    }
    const recipe = {
      merge_method: 'task_arithmetic',
      models: adapters.map((adapter) => ({ adapter, parameters: { weight: 0.5 } })),
      lora: { space: 'parameters' },
    };
    const response = await postMerge(recipe);
    assert.equal(response.statusCode, 202, response.body);
    assert.deepEqual((await api.jobs.jobsUsingArtifact(adapters[1])).length, 1);
    const peft = await postMerge({
      merge_method: 'peft_cat',
      models: adapters.map((adapter) => ({ adapter, parameters: { weight: 1 } })),
    });
    assert.equal(peft.statusCode, 202, peft.body);
  });

  describe('validates before queueing', () => {
    it('recipe structure: 422 with the path', async () => {
      const problem = await expectProblem(
        { ...goldenRecipe(), models: [{ model: ids.m0, adapter: ids.m1 }] },
        422,
        'invalid-recipe',
      );
      assert.equal(problem.path, 'models[0]');
      const empty = await expectProblem({ merge_method: 'linear', models: [] }, 422, 'invalid-recipe');
      assert.equal(empty.path, 'models');
      const unknownField = await expectProblem({ ...goldenRecipe(), slerp_t: 1 }, 422, 'invalid-recipe');
      assert.equal(unknownField.path, 'slerp_t');
    });

    it('unknown artifact ids: 422 naming them', async () => {
      const missing = 'mdl_00000000000000000000000000';
      const recipe = goldenRecipe();
      (recipe.models as Array<{ model: string }>)[1].model = missing;
      const problem = await expectProblem(recipe, 422, 'unknown-artifact');
      assert.deepEqual(problem.artifacts, [missing]);
      assert.match(problem.detail, new RegExp(missing));
      const wrongKind = await expectProblem(
        { merge_method: 'linear', models: [{ adapter: ids.m0, parameters: { weight: 1 } }] },
        422,
        'unknown-artifact',
      );
      assert.deepEqual(wrongKind.artifacts, [ids.m0]);
    });

    it('method registry: unknown method, missing required parameter', async () => {
      const unknown = await expectProblem(
        { ...goldenRecipe(), merge_method: 'frankenmerge' },
        422,
        'invalid-merge',
      );
      assert.match(unknown.detail, /frankenmerge/);
      const missing = await expectProblem(
        { merge_method: 'linear', models: [{ model: ids.m0 }, { model: ids.m1 }] },
        422,
        'invalid-merge',
      );
      assert.equal(missing.parameter, 'weight');
    });

    it('out-of-range parameters: 422 naming model, parameter and path, nothing queued', async () => {
      const withDensity = (method: string, density: unknown, at: 'model' | 'top') => ({
        merge_method: method,
        base_model: ids.base,
        models: [
          { model: ids.m0, parameters: { weight: 1, ...(at === 'model' ? { density } : {}) } },
          { model: ids.m1, parameters: { weight: 1 } },
        ],
        ...(at === 'top' ? { parameters: { density } } : {}),
      });
      const perModel = await expectProblem(withDensity('dare_ties', -1, 'model'), 422, 'invalid-merge');
      assert.equal(perModel.parameter, 'density');
      assert.equal(perModel.model, ids.m0);
      assert.equal(perModel.path, 'models[0].parameters.density');
      assert.equal(perModel.code, 'invalid_parameter');
      const top = await expectProblem(withDensity('ties', 0, 'top'), 422, 'invalid-merge');
      assert.equal(top.path, 'parameters.density');
      const gradient = await expectProblem(
        withDensity('ties', [1, 0.5, -0.5], 'model'),
        422,
        'invalid-merge',
      );
      assert.equal(gradient.path, 'models[0].parameters.density[2]');
      const gamma = await expectProblem(
        { ...withDensity('breadcrumbs', 0.5, 'model'), parameters: { gamma: -3 } },
        422,
        'invalid-merge',
      );
      assert.equal(gamma.parameter, 'gamma');
      const epsilon = await expectProblem(
        {
          ...withDensity('della', 0.5, 'model'),
          models: [
            { model: ids.m0, parameters: { weight: 1, density: 0.5, epsilon: 5 } },
            { model: ids.m1, parameters: { weight: 1, density: 0.5 } },
          ],
        },
        422,
        'invalid-merge',
      );
      assert.equal(epsilon.parameter, 'epsilon');
      assert.equal(epsilon.model, ids.m0);
    });

    it('GET /v1/methods declares each range', async () => {
      const { items } = (await api.app.inject({ method: 'GET', url: '/v1/methods' })).json();
      const della = items.find((m: { name: string }) => m.name === 'della');
      const density = della.parameters.find((p: { name: string }) => p.name === 'density');
      assert.deepEqual(density.range, { min: 0, minExclusive: true, max: 1, text: '(0, 1]' });
      assert.match(della.parameterRule, /density \+ epsilon < 1/);
    });

    it('shapes: 422 naming the tensor', async () => {
      const dir = await writeModelFolder(path.join(api.workDir, 'odd'), { config: false });
      const upload = await api.app.inject({
        method: 'POST',
        url: '/v1/models',
        ...multipart([filePart('model.safetensors', await fs.readFile(path.join(dir, 'model.safetensors')))]),
      });
      assert.equal(upload.statusCode, 201, upload.body);
      const recipe = goldenRecipe();
      (recipe.models as Array<{ model: string }>)[2].model = upload.json().id;
      const problem = await expectProblem(recipe, 422, 'invalid-merge');
      assert.equal(typeof problem.tensor, 'string', JSON.stringify(problem));
    });

    it('a body that is not a JSON object: 400; not JSON at all: 400 or 415', async () => {
      await expectProblem([1, 2], 400, 'invalid-request');
      const broken = await api.app.inject({
        method: 'POST',
        url: '/v1/merges',
        headers: { 'content-type': 'application/json' },
        payload: '{"merge_method": ',
      });
      assert.equal(broken.statusCode, 400);
      assert.equal(broken.json().type, 'https://lorafuse.dev/problems/invalid-request');
      const text = await api.app.inject({
        method: 'POST',
        url: '/v1/merges',
        headers: { 'content-type': 'text/plain' },
        payload: 'merge_method: linear',
      });
      assert.equal(text.statusCode, 415);
      assert.equal(text.json().type, 'https://lorafuse.dev/problems/unsupported-media-type');
      assert.match(text.json().detail, /text\/plain is not accepted.*application\/json or application\/yaml/);
      assert.deepEqual(text.json().accepted, [
        'application/json',
        'application/yaml',
        'application/x-yaml',
        'text/yaml',
      ]);
      // A type no parser knows is refused the same way, before its body is read.
      const form = await api.app.inject({
        method: 'POST',
        url: '/v1/merges',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        payload: 'merge_method=linear',
      });
      assert.equal(form.statusCode, 415, form.body);
      assert.equal(form.headers['content-type'], 'application/problem+json; charset=utf-8');
      assert.match(form.json().detail, /application\/x-www-form-urlencoded is not accepted/);
      assert.ok(form.json().accepted.includes('application/yaml'));
    });

    it('takes the same recipe as application/yaml: the same job fields, the same idempotency', async () => {
      const recipe = goldenRecipe();
      const yamlBody = [
        '# the golden task_arithmetic recipe, as mergekit users write it',
        'merge_method: task_arithmetic',
        `base_model: ${ids.base}`,
        'models:',
        ...['m0', 'm1', 'm2'].map((m) => `  - model: ${ids[m as 'm0']}\n    parameters:\n      weight: 1.0`),
        'parameters:',
        '  lambda: 0.7',
        'dtype: float32',
        'seed: 42',
        '',
      ].join('\n');
      for (const type of ['application/yaml', 'application/x-yaml', 'text/yaml; charset=utf-8']) {
        const response = await api.app.inject({
          method: 'POST',
          url: '/v1/merges',
          headers: { 'content-type': type, 'idempotency-key': `yaml-${type}` },
          payload: yamlBody,
        });
        assert.equal(response.statusCode, 202, `${type}: ${response.body}`);
        assert.deepEqual(response.json().recipe, { ...recipe, seed: 42 });
      }
      // The same key with the JSON form of the same recipe is the same request, so the same job.
      const asYaml = await api.app.inject({
        method: 'POST',
        url: '/v1/merges',
        headers: { 'content-type': 'application/yaml', 'idempotency-key': 'one-recipe' },
        payload: yamlBody,
      });
      const asJson = await postMerge({ ...recipe, seed: 42 }, { 'idempotency-key': 'one-recipe' });
      assert.equal(asJson.statusCode, 200, asJson.body);
      assert.equal(asJson.json().id, asYaml.json().id);
    });

    it('a YAML body that does not parse, repeats a key or is not a mapping: 400, nothing queued', async () => {
      const post = (payload: string) =>
        api.app.inject({
          method: 'POST',
          url: '/v1/merges',
          headers: { 'content-type': 'application/yaml' },
          payload,
        });
      const jobsBefore = (await api.jobs.list({ limit: 100 })).items.length;
      for (const [payload, pattern] of [
        ['merge_method: [linear', /does not parse/],
        ['merge_method: linear\nmerge_method: ties\n', /does not parse.*unique/i],
        ['- merge_method: linear\n', /must be an object/],
        ['merge_method: linear\n---\nmerge_method: ties\n', /does not parse/],
      ] as const) {
        const response = await post(payload);
        assert.equal(response.statusCode, 400, `${payload}: ${response.body}`);
        assert.equal(response.json().type, 'https://lorafuse.dev/problems/invalid-request');
        assert.match(response.json().detail, pattern);
      }
      // A YAML recipe that parses but names no real artifact is the same 422 as its JSON form.
      const unknown = await post(
        `merge_method: linear\nmodels:\n  - model: mdl_doesnotexist\n    parameters: {weight: 1}\n`,
      );
      assert.equal(unknown.statusCode, 422, unknown.body);
      assert.equal((await api.jobs.list({ limit: 100 })).items.length, jobsBefore);
    });
  });

  describe('jobs', () => {
    it('lists, filters and pages jobs', async () => {
      const created: string[] = [];
      for (let seed = 1; seed <= 3; seed++)
        created.push((await postMerge({ ...goldenRecipe(), seed })).json().id);
      const page = (await api.app.inject({ method: 'GET', url: '/v1/jobs?limit=2' })).json();
      assert.deepEqual(
        page.items.map((job: { id: string }) => job.id),
        [created[2], created[1]],
      );
      const rest = (
        await api.app.inject({ method: 'GET', url: `/v1/jobs?limit=2&cursor=${page.nextCursor}` })
      ).json();
      assert.deepEqual(
        rest.items.map((job: { id: string }) => job.id),
        [created[0]],
      );
      assert.equal(rest.nextCursor, null);
      const queued = (
        await api.app.inject({ method: 'GET', url: '/v1/jobs?state=queued&type=merge' })
      ).json();
      assert.equal(queued.items.length, 3);
      const completed = (await api.app.inject({ method: 'GET', url: '/v1/jobs?state=completed' })).json();
      assert.deepEqual(completed.items, []);
      for (const query of ['state=done', 'type=train', 'limit=500']) {
        const response = await api.app.inject({ method: 'GET', url: `/v1/jobs?${query}` });
        assert.equal(response.statusCode, 400, query);
      }
      const badCursor = await api.app.inject({ method: 'GET', url: '/v1/jobs?cursor=zzz' });
      assert.equal(badCursor.statusCode, 400);
      assert.equal(badCursor.json().type, 'https://lorafuse.dev/problems/invalid-cursor');
    });

    it('cancels a queued job once, then 409; unknown jobs are 404', async () => {
      const job = (await postMerge(goldenRecipe())).json();
      const cancelled = await api.app.inject({ method: 'DELETE', url: `/v1/jobs/${job.id}` });
      assert.equal(cancelled.statusCode, 200, cancelled.body);
      assert.equal(cancelled.json().state, 'cancelled');
      assert.equal(
        (await api.app.inject({ method: 'GET', url: `/v1/jobs/${job.id}` })).json().state,
        'cancelled',
      );
      const again = await api.app.inject({ method: 'DELETE', url: `/v1/jobs/${job.id}` });
      assert.equal(again.statusCode, 409);
      assert.equal(again.json().type, 'https://lorafuse.dev/problems/job-not-cancellable');
      assert.equal(again.json().state, 'cancelled');
      // With the job cancelled, its inputs can be deleted again.
      assert.equal((await api.app.inject({ method: 'DELETE', url: `/v1/models/${ids.m0}` })).statusCode, 204);

      for (const method of ['GET', 'DELETE'] as const) {
        const missing = await api.app.inject({ method, url: '/v1/jobs/job_nope' });
        assert.equal(missing.statusCode, 404, method);
        assert.equal(missing.json().type, 'https://lorafuse.dev/problems/job-not-found');
      }
    });
  });
});
