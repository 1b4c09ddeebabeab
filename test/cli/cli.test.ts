import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { describe, it } from 'node:test';
import { goldenCaseDir } from '../helpers/golden.ts';
import { runCli } from '../helpers/run-cli.ts';

const run = (args: string[], env: Record<string, string> = {}) => runCli(args, { env });

describe('lorafuse CLI', () => {
  it('prints the commands with --help and the version with --version', async () => {
    const help = await run(['--help']);
    assert.equal(help.code, 0);
    for (const command of [
      'serve',
      'worker',
      'dev',
      'demo',
      'study',
      'merge',
      'predict',
      'finetune',
      'evaluate',
    ]) {
      assert.match(help.stdout, new RegExp(`\\n  ${command} `), command);
    }
    const version = await run(['--version']);
    assert.equal(version.code, 0);
    assert.match(version.stdout, /^\d+\.\d+\.\d+\n$/);
  });

  it('has --help for every service command and rejects an unknown command with exit 2', async () => {
    for (const command of ['serve', 'worker', 'dev', 'demo', 'demo merge', 'study']) {
      const help = await run([...command.split(' '), '--help']);
      assert.equal(help.code, 0, command);
      assert.match(help.stdout, new RegExp(`usage: lorafuse ${command}`));
    }
    const unknown = await run(['frobnicate']);
    assert.equal(unknown.code, 2);
    assert.match(unknown.stderr, /unknown command "frobnicate"/);
  });

  it('delegates merge and the model commands (dry-run of a golden recipe, predict --help)', async () => {
    const recipe = path.join(goldenCaseDir('mergekit_task_arithmetic'), 'recipe.yaml');
    const dryRun = await run([
      'merge',
      recipe,
      '--out',
      path.join(os.tmpdir(), 'lorafuse-never-written'),
      '--dry-run',
    ]);
    assert.equal(dryRun.code, 0, dryRun.stderr);
    assert.match(dryRun.stdout, /method: task_arithmetic/);
    assert.match(dryRun.stdout, /tensors \(4\)/);
    const predict = await run(['predict', '--help']);
    assert.equal(predict.code, 0, predict.stderr);
    assert.match(predict.stdout, /lorafuse predict --model DIR/);
  });

  it('refuses a data-driven method in `lorafuse merge` (no task data) with exit 1 and what to do instead', async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'lorafuse-cli-'));
    try {
      const recipe = path.join(dir, 'recipe.yaml');
      await writeFile(
        recipe,
        'merge_method: lorahub\nbase_model: base\nmodels:\n  - model: a\n  - model: b\n',
      );
      const out = path.join(dir, 'out');
      const result = await run(['merge', recipe, '--out', out]);
      assert.equal(result.code, 1, result.stderr);
      assert.match(result.stderr, /error: lorahub is a data-driven method/);
      assert.match(result.stderr, /POST \/v1\/merges with evaluation\.tasks/);
      assert.equal(existsSync(out), false);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('exits 2 with the variable named on a configuration error', async () => {
    const result = await run(['serve'], { PORT: 'eighty', REDIS_URL: 'redis://127.0.0.1:1' });
    assert.equal(result.code, 2);
    assert.match(result.stderr, /configuration error: PORT: expected a whole number/);
    const scheme = await run(['worker'], { REDIS_URL: 'http://localhost' });
    assert.equal(scheme.code, 2);
    assert.match(scheme.stderr, /REDIS_URL: unsupported scheme/);
    const workers = await run(['worker'], {
      REDIS_URL: 'redis://127.0.0.1:1',
      LORAFUSE_MERGE_WORKERS: 'abc',
    });
    assert.equal(workers.code, 2);
    assert.match(workers.stderr, /LORAFUSE_MERGE_WORKERS: expected a whole number, got "abc"/);
    const merge = await run(
      ['merge', 'recipe.yaml', '--out', path.join(os.tmpdir(), 'lorafuse-never-written')],
      {
        LORAFUSE_MERGE_WORKERS: 'abc',
      },
    );
    assert.equal(merge.code, 2);
    assert.match(
      merge.stderr,
      /configuration error: LORAFUSE_MERGE_WORKERS: expected a whole number, got "abc"/,
    );
    const predict = await run(['predict', '--model', 'm', '--inputs', 'i'], { LORAFUSE_BACKEND: 'quantum' });
    assert.equal(predict.code, 2);
    assert.match(predict.stderr, /configuration error: LORAFUSE_BACKEND: expected one of auto/);
    const missing = await run(['serve'], { REDIS_URL: '' });
    assert.equal(missing.code, 2);
    assert.match(missing.stderr, /needs REDIS_URL/);
  });

  it('runs the merge walkthrough end to end: uploads, two merges through the queue, checked result, clean exit', async () => {
    const demo = await run(['demo', 'merge'], { REDIS_URL: '', LOG_LEVEL: 'warn' });
    assert.equal(demo.code, 0, `${demo.stdout}\n${demo.stderr}`);
    const out = demo.stdout;
    assert.equal((out.match(/POST \/v1\/models/g) ?? []).length, 4);
    assert.match(out, /embedded redis-server at redis:\/\/127\.0\.0\.1:\d+/);
    assert.match(
      out,
      /api key\s+lfk_[0-9a-f]{12}_\S+\s+\(admin of project default/,
      'the demo runs with auth on',
    );
    assert.match(out, /job job_[0-9a-f-]{36} queued/);
    assert.equal((out.match(/\] completed/g) ?? []).length, 2, 'both jobs completed');
    assert.equal((out.match(/sha256 [0-9a-f]{64}/g) ?? []).length, 2);
    const check = /check: max \|result - .*\| = ([0-9.e+-]+)/.exec(out);
    assert.ok(check, 'the arithmetic check is printed');
    assert.ok(Number(check[1]) < 1e-5, `task_arithmetic deviates by ${check[1]}`);
    assert.match(out, /model\.layers\.1\.mlp\.down_proj\.weight\s+F32\s+\[64,128\]/);
    assert.match(out, /lorafuse demo: done in/);
  });
});
