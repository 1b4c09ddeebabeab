// `lorafuse study` arguments → plan: presets, overrides, and the refusals a user meets before any job runs.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseCommand, UsageError } from '../../src/cli/args.ts';
import { buildPlan, STUDY_SPEC } from '../../src/cli/study/plan.ts';
import { mergeCells } from '../../src/cli/study/runner.ts';
import { QUICK_STUDY_TASKS, STUDY_TASKS } from '../../src/eval/datasets/mnist-suite.ts';

const plan = (argv: string[], env: NodeJS.ProcessEnv = {}) => buildPlan(parseCommand(STUDY_SPEC, argv), env);

describe('lorafuse study: the plan', () => {
  it('--quick takes the quick tasks and sizes; the default takes every task; overrides apply', () => {
    const quick = plan(['--quick']);
    assert.deepEqual(
      quick.tasks.map((t) => t.name),
      [...QUICK_STUDY_TASKS],
    );
    assert.equal(quick.preset.name, 'quick');
    assert.equal(quick.url, null);
    const all = plan([]);
    assert.deepEqual(
      all.tasks.map((t) => t.name),
      STUDY_TASKS.map((t) => t.name),
    );
    const custom = plan([
      '--quick',
      '--steps',
      '7',
      '--train-examples',
      '40',
      '--grid-points',
      '5',
      '--seed',
      '9',
    ]);
    assert.equal(custom.training.steps, 7);
    assert.equal(custom.sizes.train, 40);
    assert.deepEqual(custom.disentanglement.grid, [-2, -1, 0, 1, 2]);
    assert.equal(custom.seed, 9);
    assert.equal(custom.heads, 'probe');
    const tuned = plan(['--quick', '--heads', 'random', '--learning-rate', 'llora=8e-3, lora=3e-3']);
    assert.equal(tuned.heads, 'random');
    assert.deepEqual(tuned.training.learningRate, { full: 1e-3, lora: 3e-3, llora: 8e-3 });
    assert.throws(() => plan(['--learning-rate', 'qlora=1e-3']), /"qlora=1e-3" is not MODE=RATE/);
    assert.throws(() => plan(['--learning-rate', 'lora=fast']), /lora's rate "fast" is not a number/);
    assert.throws(() => plan(['--learning-rate', 'lora=0']), /is not a number in \(0, 1\]/);
    assert.throws(() => plan(['--heads', 'zero-shot']), /zero-shot/);
    assert.equal(plan(['http://x:1']).url, 'http://x:1');
    assert.equal(plan([], { LORAFUSE_URL: 'http://y:2' }).url, 'http://y:2');
  });

  it('lists every merge cell: full once per method, LoRA modes in both spaces, LoraHub in parameter space', () => {
    const cells = mergeCells(plan(['--quick']));
    assert.equal(cells.length, 4 + 7 + 7);
    assert.ok(cells.some((c) => c.mode === 'llora' && c.method === 'ties' && c.space === 'delta'));
    assert.ok(!cells.some((c) => c.method === 'lorahub' && c.space === 'delta'));
    assert.ok(cells.filter((c) => c.mode === 'full').every((c) => c.space === null));
  });

  it('refuses --preset paper without the weights and data it needs, and unknown tasks, modes or methods', () => {
    assert.throws(
      () => plan(['--preset', 'paper']),
      (error: Error) => {
        assert.ok(error instanceof UsageError);
        assert.match(error.message, /CLIP ViT-B\/16/);
        assert.match(error.message, /--model DIR/);
        assert.match(error.message, /--data DIR/);
        return true;
      },
    );
    assert.throws(() => plan(['--tasks', 'rotated,nope']), /unknown task "nope"/);
    assert.throws(() => plan(['--modes', 'qlora']), /unknown mode "qlora"; known: full, lora, llora/);
    assert.throws(() => plan(['--methods', 'slerp']), /unknown method "slerp"/);
    assert.throws(() => plan(['--tasks', 'rotated']), /at least 2 tasks/);
    assert.throws(() => plan(['--quick', '--preset', 'default']), /alternatives/);
  });
});
