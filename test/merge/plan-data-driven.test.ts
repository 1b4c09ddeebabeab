// Checks of data-driven recipes without the runtime: declared ranges, input kinds, base_model, the task
// count, gradients refused, LoRA ranks for parameter space; and `planMerge` refusing them (no data).
import assert from 'node:assert/strict';
import { cp, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileResolver } from '../../src/cli/merge-command.ts';
import { MergePlanError } from '../../src/merge/errors.ts';
import { parseRecipe, planDataDrivenMerge, planMerge } from '../../src/merge/index.ts';
import { tempDir } from '../helpers/redis.ts';

const FIXTURE = path.resolve(import.meta.dirname, '../fixtures/model/mlp');

describe('planDataDrivenMerge', () => {
  let dir: { dir: string; remove(): void };
  before(async () => {
    dir = tempDir('lorafuse-plan-dd');
    for (const name of ['base', 'a', 'b'])
      await cp(path.join(FIXTURE, 'model'), path.join(dir.dir, name), { recursive: true });
    await cp(path.join(FIXTURE, 'adapter'), path.join(dir.dir, 'adapter-a'), { recursive: true });
    await cp(path.join(FIXTURE, 'adapter'), path.join(dir.dir, 'adapter-b'), { recursive: true });
  });
  after(() => dir.remove());

  const plan = (recipe: Record<string, unknown>, tasks?: number) =>
    planDataDrivenMerge(parseRecipe(recipe), fileResolver(dir.dir), tasks);
  async function refused(
    recipe: Record<string, unknown>,
    code: string,
    tasks?: number,
  ): Promise<MergePlanError> {
    try {
      await plan(recipe, tasks);
    } catch (error) {
      assert.ok(error instanceof MergePlanError, String(error));
      assert.equal(error.code, code, error.message);
      return error;
    }
    assert.fail(`expected ${code}`);
  }
  const models = [{ model: 'a' }, { model: 'b' }];

  it('fills defaults and resolves per-model parameters', async () => {
    const lorahub = await plan({ merge_method: 'lorahub', base_model: 'base', models }, 2);
    assert.deepEqual(lorahub.global, { max_evaluations: 40, examples: 32, l1_weight: 0.05, sigma: 0.5 });
    assert.equal(lorahub.output, 'model');
    const fisher = await plan({
      merge_method: 'fisher',
      models: [{ model: 'a', parameters: { weight: 2 } }, { model: 'b' }],
    });
    assert.deepEqual(
      fisher.perModel.map((p) => p.weight),
      [2, 1],
    );
    const adapters = await plan({
      merge_method: 'lorahub',
      base_model: 'base',
      models: [{ adapter: 'adapter-a' }, { adapter: 'adapter-b' }],
    });
    assert.equal(adapters.output, 'adapter');
  });

  it('refuses values outside the declared ranges, naming the parameter', async () => {
    const error = await refused(
      { merge_method: 'lorahub', base_model: 'base', models, parameters: { max_evaluations: 1 } },
      'invalid_parameter',
    );
    assert.equal(error.parameter, 'max_evaluations');
    assert.match(error.message, /must be in \[2, 10000\]/);
    await refused({ merge_method: 'regmean', models, parameters: { alpha: 1.5 } }, 'invalid_parameter');
    await refused(
      { merge_method: 'adamerging', base_model: 'base', models, parameters: { granularity: 'row' } },
      'invalid_parameter',
    );
    await refused(
      { merge_method: 'lorahub', base_model: 'base', models, parameters: { sigma: [0.1, 0.2] } },
      'invalid_parameter',
    );
  });

  it('checks base_model, the task count and the LoRA space against the declaration', async () => {
    await refused({ merge_method: 'adamerging', models }, 'missing_base_model');
    await refused({ merge_method: 'fisher', base_model: 'base', models }, 'unused_base_model');
    await refused(
      { merge_method: 'lorahub', base_model: 'base', models: [{ model: 'base' }, { model: 'a' }] },
      'base_listed',
    );
    await refused({ merge_method: 'lorahub', base_model: 'base', models }, 'task_count_mismatch', 3);
    await refused(
      { merge_method: 'lorahub', base_model: 'base', models: [{ model: 'a' }] },
      'too_few_models',
    );
    await refused(
      { merge_method: 'regmean', models: [{ adapter: 'adapter-a' }, { adapter: 'adapter-b' }] },
      'missing_base_model',
    );
    await refused(
      {
        merge_method: 'lorahub',
        base_model: 'base',
        models: [{ adapter: 'adapter-a' }, { adapter: 'adapter-b' }],
        lora: { space: 'delta' },
      },
      'unsupported_lora_space',
    );
  });

  it('lorahub combines lora_A and lora_B directly: ranks and scalings must agree', async () => {
    const other = path.join(dir.dir, 'adapter-alpha');
    await cp(path.join(FIXTURE, 'adapter'), other, { recursive: true });
    const config = JSON.parse(await readFile(path.join(other, 'adapter_config.json'), 'utf8'));
    await writeFile(
      path.join(other, 'adapter_config.json'),
      JSON.stringify({ ...config, lora_alpha: config.lora_alpha * 2 }),
    );
    const error = await refused(
      {
        merge_method: 'lorahub',
        base_model: 'base',
        models: [{ adapter: 'adapter-a' }, { adapter: 'adapter-alpha' }],
      },
      'lora_scaling_mismatch',
    );
    assert.ok(error.tensor);
    // delta-space methods take them: the dense deltas carry each adapter's own scaling.
    await plan({
      merge_method: 'regmean',
      base_model: 'base',
      models: [{ adapter: 'adapter-a' }, { adapter: 'adapter-alpha' }],
    });
  });

  it('planMerge (lorafuse merge) refuses a data-driven method and says where to run it', async () => {
    await assert.rejects(
      planMerge(parseRecipe({ merge_method: 'regmean', models }), fileResolver(dir.dir)),
      (error) => {
        assert.ok(error instanceof MergePlanError);
        assert.equal(error.code, 'needs_task_data');
        assert.match(error.message, /POST \/v1\/merges with evaluation\.tasks/);
        return true;
      },
    );
  });
});
