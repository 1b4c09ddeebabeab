// Every command's arguments and files are checked before anything heavy starts: typos get the nearest
// option, missing files and model folders without config.json are named plainly, --help lists every
// option with its meaning and default.
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import {
  type CommandSpec,
  checkPaths,
  formatHelp,
  nearest,
  parseCommand,
  pathProblem,
  UsageError,
} from '../../src/cli/args.ts';
import { CLIENT_SPECS } from '../../src/cli/client/specs.ts';
import { MERGE_SPEC } from '../../src/cli/merge-command.ts';
import { MODEL_COMMAND_SPECS } from '../../src/cli/model-commands.ts';
import { DEMO_SPEC, DEV_SPEC, SERVE_SPEC, WORKER_SPEC } from '../../src/cli/usage.ts';
import { runCli } from '../helpers/run-cli.ts';

const scratch = mkdtempSync(path.join(os.tmpdir(), 'lorafuse-args-'));
after(() => rmSync(scratch, { recursive: true, force: true }));

const ALL_SPECS: CommandSpec[] = [
  ...Object.values(MODEL_COMMAND_SPECS),
  MERGE_SPEC,
  SERVE_SPEC,
  WORKER_SPEC,
  DEV_SPEC,
  DEMO_SPEC,
  ...Object.values(CLIENT_SPECS),
];

describe('argument declarations', () => {
  it('--help of every command names every option with a meaning, and a default for each optional one', () => {
    for (const spec of ALL_SPECS) {
      const help = formatHelp(spec);
      assert.match(help, new RegExp(`^usage: lorafuse ${spec.command}`), spec.command);
      for (const [name, option] of Object.entries(spec.options)) {
        const line = help.split('\n').findIndex((l) => new RegExp(`^ +(-\\w, )?--${name}\\b`).test(l));
        assert.ok(line >= 0, `${spec.command} --help lacks --${name}`);
        assert.ok(option.description.length > 10, `${spec.command} --${name} has no real description`);
        const text = help
          .split('\n')
          .slice(line, line + 2)
          .join(' ');
        if (option.required) assert.match(text, /\[required\]/, `${spec.command} --${name}`);
        else assert.match(text, /\[default: [^\]]+\]/, `${spec.command} --${name} states no default`);
      }
    }
  });

  it('suggests the nearest option or choice for a typo, and nothing for a word far from all', () => {
    assert.equal(nearest('stpes', ['steps', 'seed', 'lr']), 'steps');
    assert.equal(nearest('batchsize', ['batch-size', 'steps']), 'batch-size');
    assert.equal(nearest('eval', ['eval-every', 'steps']), 'eval-every');
    assert.equal(nearest('frobnicate', ['steps', 'seed', 'lr']), null);
    const spec = MODEL_COMMAND_SPECS.finetune;
    const base = ['--model', 'm', '--dataset', 'd', '--mode', 'lora', '--out', 'o'];
    assert.throws(() => parseCommand(spec, [...base, '--learning-rate', '1']), {
      message: /unknown option --learning-rate/,
    });
    assert.throws(() => parseCommand(spec, [...base, '--stpes', '3']), {
      message: 'unknown option --stpes; did you mean --steps?',
    });
    assert.throws(
      () => parseCommand(spec, ['--model', 'm', '--dataset', 'd', '--mode', 'lroa', '--out', 'o']),
      {
        message: /--mode must be one of lora, llora, full, got "lroa"; did you mean lora\?/,
      },
    );
    assert.throws(() => parseCommand(spec, [...base, '--runtimes', '0']), {
      message: /--runtimes must be a whole number from 1 to 16/,
    });
    assert.throws(() => parseCommand(spec, [...base, '--lr', 'fast']), { message: /--lr must be a number/ });
    assert.throws(() => parseCommand(spec, ['--model', 'm']), { message: '--dataset is required' });
    assert.throws(() => parseCommand(SERVE_SPEC, ['--port', '80']), {
      message: /serve takes no options \(its settings are environment variables/,
    });
    assert.throws(() => parseCommand(MERGE_SPEC, ['a.yaml', 'b.yaml']), {
      message: /unexpected argument "b.yaml"/,
    });
  });

  it('names what is wrong with a path: missing, a file for a folder, a model folder without config.json', () => {
    const model = path.join(scratch, 'bare-model');
    mkdirSync(model);
    writeFileSync(path.join(model, 'model.safetensors'), '');
    const file = path.join(scratch, 'file.bin');
    writeFileSync(file, 'x');
    assert.match(pathProblem(path.join(scratch, 'nope'), 'file')!, /nope does not exist$/);
    assert.match(pathProblem(model, 'model-dir')!, /has no config\.json: .*Hugging Face model folder/);
    assert.equal(pathProblem(model, 'model'), null, 'a bare checkpoint can be merged or uploaded');
    assert.match(pathProblem(file, 'dir')!, /is a file; expected a folder/);
    assert.match(pathProblem(scratch, 'file')!, /is a folder; expected a file/);
    assert.match(pathProblem(model, 'adapter-dir')!, /no adapter_config\.json: not a PEFT adapter folder/);
    assert.match(pathProblem(path.join(scratch, 'no', 'out'), 'new-path')!, /does not exist/);
    assert.equal(pathProblem(path.join(scratch, 'new-out'), 'new-path'), null);
    assert.equal(pathProblem(file, 'new-file'), null, 'an existing file is replaced');
    assert.match(pathProblem(scratch, 'new-file')!, /is a folder; expected a file/);
    assert.match(
      pathProblem(path.join(scratch, 'no', 'logits.safetensors'), 'new-file')!,
      /the folder .*\/no \(where logits\.safetensors would go\) does not exist/,
    );
    writeFileSync(path.join(model, 'config.json'), '{}');
    assert.equal(pathProblem(model, 'model-dir'), null);

    const parsed = parseCommand(MODEL_COMMAND_SPECS.evaluate, [
      '--model',
      path.join(scratch, 'missing-model'),
      '--dataset',
      path.join(scratch, 'missing.safetensors'),
    ]);
    assert.throws(
      () => checkPaths(MODEL_COMMAND_SPECS.evaluate, parsed),
      (error: Error) =>
        error instanceof UsageError &&
        /--model: .*missing-model does not exist/.test(error.message) &&
        /--dataset: .*missing\.safetensors does not exist/.test(error.message),
    );
  });
});

describe('the lorafuse command checks before it starts a backend', () => {
  it('finetune with a typo: exit 2, the nearest option, and no backend started', async () => {
    const result = await runCli([
      'finetune',
      '--model',
      scratch,
      '--dataset',
      'd',
      '--mode',
      'lora',
      '--out',
      'o',
      '--stpes',
      '3',
    ]);
    assert.equal(result.code, 2, result.stderr);
    assert.match(result.stderr, /unknown option --stpes; did you mean --steps\?/);
    assert.doesNotMatch(result.stderr, /tfjs|backend|Vulkan|ENOENT/i);
  });

  it('finetune on a model folder without config.json and a missing dataset: both named, no ENOENT', async () => {
    const bare = path.join(scratch, 'no-config');
    mkdirSync(bare);
    writeFileSync(path.join(bare, 'model.safetensors'), '');
    const result = await runCli([
      'finetune',
      '--model',
      bare,
      '--dataset',
      path.join(scratch, 'train.safetensors'),
      '--mode',
      'lora',
      '--out',
      path.join(scratch, 'adapter'),
    ]);
    assert.equal(result.code, 2, result.stderr);
    assert.match(result.stderr, /lorafuse finetune: --model: .*no-config has no config\.json/);
    assert.match(result.stderr, /lorafuse finetune: --dataset: .*train\.safetensors does not exist/);
    assert.doesNotMatch(result.stderr, /ENOENT|tfjs|Vulkan/);
  });

  it('finetune --help prints every option with its default, without loading tfjs', async () => {
    const result = await runCli(['finetune', '--help']);
    assert.equal(result.code, 0);
    assert.match(result.stdout, /--steps N +optimizer steps \[default: 100\]/);
    assert.match(
      result.stdout,
      /--lr X +peak learning rate.*\[default: 1e-3 \(lora, llora\), 1e-4 \(full\)\]/,
    );
    assert.equal(result.stderr, '');
  });

  it('merge names a missing recipe plainly; an unknown command gets the nearest one', async () => {
    const merge = await runCli([
      'merge',
      path.join(scratch, 'recipe.yaml'),
      '--out',
      path.join(scratch, 'merged'),
    ]);
    assert.equal(merge.code, 2);
    assert.match(merge.stderr, /lorafuse merge: RECIPE: .*recipe\.yaml does not exist/);
    const typo = await runCli(['fintune']);
    assert.equal(typo.code, 2);
    assert.match(typo.stderr, /unknown command "fintune"; did you mean "finetune"\?/);
  });
});
