import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { sampledRows } from '../../../src/eval/data-driven/merge-inputs.ts';
import { evaluateModel } from '../../../src/model/evaluate-model.ts';
import { ForwardContext } from '../../../src/model/forward-context.ts';
import { loadModel } from '../../../src/model/load-model.ts';
import { loadAdapter } from '../../../src/model/lora/peft-adapter.ts';
import { deriveSeed } from '../../../src/model/random.ts';
import { removeScratchDirs, testBackend } from '../../model/helpers.ts';
import { buildTaskCase, MLP_BASE, plainAverage, runMethod, scoreMerged, type TaskCase } from './task-case.ts';

// Three tasks that each read their own block of the inputs (see task-case.ts); test splits are held out.
describe('lorahub', () => {
  let adapters: TaskCase;
  let models: TaskCase;
  before(async () => {
    await testBackend();
    adapters = await buildTaskCase('lora', 3);
    models = await buildTaskCase('full', 3);
  });
  after(removeScratchDirs);

  it('LoRA adapters (parameter space, the paper): beats plain averaging of the adapters on held-out test data', async () => {
    const rel = (p: string) => path.relative(adapters.dir, p);
    const result = await runMethod(adapters, {
      merge_method: 'lorahub',
      base_model: rel(MLP_BASE),
      models: adapters.inputs.map((input) => ({ adapter: rel(input) })),
    });
    assert.equal(result.kind, 'adapter');
    assert.ok(existsSync(path.join(result.outDir, 'adapter_model.safetensors')));
    const weights = result.report.coefficients!;
    assert.equal(weights.length, 3);
    for (const w of weights) assert.ok(Math.abs(w) <= 1.5, `weight ${w} outside [-1.5, 1.5]`);
    assert.equal(result.report.objective!.length, 40, 'the default budget is 40 evaluations');
    // The search starts at plain averaging and keeps its best point.
    const [start, ...rest] = result.report.objective!.map((o) => o.value);
    assert.ok(Math.min(...rest) < start);

    const merged = await scoreMerged(adapters, { adapter: result.outDir }, 'adapters');
    const average = await scoreMerged(
      adapters,
      { adapter: await plainAverage(adapters, 'adapter') },
      'adapters',
    );
    assert.ok(
      merged.meanAccuracy > average.meanAccuracy + 0.02,
      `lorahub ${merged.accuracy} vs averaging ${average.accuracy}`,
    );
  });

  it('L-LoRA adapters: the written adapter (expansion point kept) reproduces the best objective of the search', async () => {
    const llora = await buildTaskCase('llora', 2);
    const rel = (p: string) => path.relative(llora.dir, p);
    const seed = 4;
    const result = await runMethod(
      llora,
      {
        merge_method: 'lorahub',
        base_model: rel(MLP_BASE),
        models: llora.inputs.map((input) => ({ adapter: rel(input) })),
        parameters: { max_evaluations: 10, examples: 24 },
      },
      seed,
    );
    assert.ok(existsSync(path.join(result.outDir, 'lorafuse_init.safetensors')));
    const model = await loadModel(MLP_BASE);
    const merged = await loadAdapter(result.outDir, model);
    const inputs = await Promise.all(llora.inputs.map((dir) => loadAdapter(dir, model)));
    try {
      assert.ok(
        [...merged.modules.values()].every((m) => m.linearized),
        'loaded as L-LoRA',
      );
      let loss = 0;
      for (let t = 0; t < 2; t++) {
        const examples = sampledRows(
          llora.tasks[t].validation,
          24,
          deriveSeed(seed, `lorahub-examples-${t}`),
        );
        const ctx = new ForwardContext(model.params, merged.modules, inputs[t].overrides);
        loss += (await evaluateModel(model, ctx, examples)).loss / 2;
      }
      const w = result.report.coefficients!;
      const penalty = (0.05 * (Math.abs(w[0]) + Math.abs(w[1]))) / 2;
      const best = result.report.details!.bestObjective as number;
      assert.ok(Math.abs(loss + penalty - best) < 1e-5, `${loss + penalty} vs ${best}`);
    } finally {
      for (const a of [merged, ...inputs]) a.dispose();
      model.dispose();
    }
  });

  it('full models (θ₀ + Σ wᵢτᵢ): beats plain averaging, and the same seed gives the same weights', async () => {
    const rel = (p: string) => path.relative(models.dir, p);
    const recipe = {
      merge_method: 'lorahub',
      base_model: rel(MLP_BASE),
      models: models.inputs.map((input) => ({ model: rel(input) })),
    };
    const result = await runMethod(models, recipe);
    assert.equal(result.kind, 'model');
    const merged = await scoreMerged(models, { model: result.outDir }, 'models');
    const average = await scoreMerged(models, { model: await plainAverage(models, 'model') }, 'models');
    assert.ok(
      merged.meanAccuracy > average.meanAccuracy + 0.01,
      `lorahub ${merged.accuracy} vs averaging ${average.accuracy}`,
    );
    const again = await runMethod(models, recipe);
    assert.deepEqual(again.report.coefficients, result.report.coefficients);
  });
});
