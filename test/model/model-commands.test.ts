import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { runModelCommand } from '../../src/cli/model-commands.ts';
import { readSafetensors } from '../../src/model/io/host-tensors.ts';
import { writeDataset } from '../../src/model/train/dataset.ts';
import { assertClose, FIXTURES, removeScratchDirs, scratchDir, testBackend } from './helpers.ts';

/** Runs a command, capturing what it prints. */
async function run(name: 'predict' | 'finetune' | 'evaluate', argv: string[]) {
  const out: string[] = [];
  const err: string[] = [];
  const code = await runModelCommand(name, argv, { stdout: (t) => out.push(t), stderr: (t) => err.push(t) });
  return { code, stdout: out.join(''), stderr: err.join('') };
}

describe('lorafuse predict / finetune / evaluate', () => {
  before(testBackend);
  after(removeScratchDirs);

  it('predict writes the logits transformers + PEFT give', async () => {
    const vit = path.join(FIXTURES, 'vit');
    const out = path.join(scratchDir(), 'logits.safetensors');
    const result = await run('predict', [
      '--model',
      path.join(vit, 'model'),
      '--adapter',
      path.join(vit, 'adapter'),
      '--inputs',
      path.join(vit, 'inputs.safetensors'),
      '--out',
      out,
    ]);
    assert.equal(result.code, 0, result.stderr);
    const logits = (await readSafetensors(out)).tensors.get('logits')!;
    const reference = (await readSafetensors(path.join(vit, 'reference.safetensors'))).tensors.get(
      'logits_lora',
    )!;
    assertClose(logits.data as Float32Array, reference.data as Float32Array, 1e-4, 2e-5);
  });

  it('predict writes image_embeds for a CLIP vision tower', async () => {
    const clip = path.join(FIXTURES, 'clip_vision_model');
    const out = path.join(scratchDir(), 'embeds.safetensors');
    const result = await run('predict', [
      '--model',
      path.join(clip, 'model'),
      '--inputs',
      path.join(clip, 'inputs.safetensors'),
      '--out',
      out,
    ]);
    assert.equal(result.code, 0, result.stderr);
    const written = (await readSafetensors(out)).tensors;
    assert.deepEqual(written.get('image_embeds')!.shape, [3, 16]);
    assert.equal(written.has('logits'), false);
  });

  it('finetune then evaluate: the adapter evaluates as JSON', async () => {
    const dir = scratchDir();
    const mlp = path.join(FIXTURES, 'mlp');
    const { tensors } = await readSafetensors(path.join(mlp, 'inputs.safetensors'));
    const pixels = tensors.get('pixel_values')!;
    const dataset = path.join(dir, 'train.safetensors');
    await writeDataset(dataset, {
      inputs: new Map([['pixel_values', pixels]]),
      labels: Int32Array.from([0, 1, 2]),
      task: 'tiny',
      split: 'train',
      classNames: ['a', 'b', 'c', 'd'],
    });
    const adapter = path.join(dir, 'adapter');
    const trained = await run('finetune', [
      '--model',
      path.join(mlp, 'model'),
      '--dataset',
      dataset,
      '--mode',
      'llora',
      '--out',
      adapter,
      '--steps',
      '30',
      '--lr',
      '0.05',
      '--batch-size',
      '3',
      '--rank',
      '2',
      '--validation-fraction',
      '0',
      '--runtimes',
      '2',
    ]);
    assert.equal(trained.code, 0, trained.stderr);
    assert.equal(JSON.parse(trained.stdout).steps, 30);
    const extras = JSON.parse(await readFile(path.join(adapter, 'lorafuse.json'), 'utf8'));
    assert.equal(extras.training.runtimes, 2, 'trained data-parallel over two runtimes');
    const evaluated = await run('evaluate', [
      '--model',
      path.join(mlp, 'model'),
      '--adapter',
      adapter,
      '--dataset',
      dataset,
    ]);
    assert.equal(evaluated.code, 0, evaluated.stderr);
    const report = JSON.parse(evaluated.stdout);
    assert.equal(report.task, 'tiny');
    assert.equal(report.examples, 3);
    assert.equal(report.accuracy, 1); // three examples, memorised
  });

  it('reports a usage error with exit code 2', async () => {
    const result = await run('finetune', [
      '--model',
      'x',
      '--dataset',
      'y',
      '--mode',
      'sideways',
      '--out',
      'z',
    ]);
    assert.equal(result.code, 2);
    assert.match(result.stderr, /--mode must be one of lora, llora, full/);
    const runtimes = await run('finetune', [
      '--model',
      'x',
      '--dataset',
      'y',
      '--mode',
      'lora',
      '--out',
      'z',
      '--runtimes',
      '0',
    ]);
    assert.equal(runtimes.code, 2);
    assert.match(runtimes.stderr, /--runtimes must be a whole number from 1 to 16/);
  });
});
