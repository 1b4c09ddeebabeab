import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { readSafetensors } from '../../src/model/io/host-tensors.ts';
import { readDataset, writeDataset } from '../../src/model/train/dataset.ts';
import { finetune } from '../../src/model/train/finetune.ts';
import { FIXTURES, removeScratchDirs, scratchDir, testBackend } from './helpers.ts';

const VIT = path.join(FIXTURES, 'vit');

async function tinyDataset(dir: string): Promise<string> {
  const { tensors } = await readSafetensors(path.join(VIT, 'inputs.safetensors'));
  const file = path.join(dir, 'train.safetensors');
  await writeDataset(file, {
    inputs: new Map([['pixel_values', tensors.get('pixel_values')!]]),
    labels: Int32Array.from([0, 1, 2]),
    task: 'format',
    split: 'train',
    classNames: null,
  });
  return file;
}

async function json(file: string) {
  return JSON.parse(await readFile(file, 'utf8'));
}

describe('adapters written as PEFT writes them', () => {
  before(testBackend);
  after(removeScratchDirs);

  it('adapter_config.json has PEFT 0.21’s fields in its order, and the keys PEFT saves', async () => {
    const dir = scratchDir();
    const outDir = path.join(dir, 'adapter');
    await finetune({
      modelDir: path.join(VIT, 'model'),
      dataset: await tinyDataset(dir),
      mode: 'lora',
      outDir,
      steps: 2,
      batchSize: 3,
      rank: 4,
      alpha: 8,
      targetModules: ['q_proj', 'v_proj'],
      validationFraction: 0,
    });
    const ours = await json(path.join(outDir, 'adapter_config.json'));
    const peft = await json(path.join(VIT, 'adapter', 'adapter_config.json')); // written by PEFT itself
    assert.deepEqual(Object.keys(ours), Object.keys(peft));
    const differing = ['target_modules', 'rank_pattern', 'alpha_pattern'];
    for (const key of Object.keys(peft))
      if (!differing.includes(key)) assert.deepEqual(ours[key], peft[key], key);
    assert.deepEqual(ours.target_modules, ['q_proj', 'v_proj']);
    assert.deepEqual(ours.modules_to_save, ['classifier']);

    const ourKeys = (await readSafetensors(path.join(outDir, 'adapter_model.safetensors'))).tensors;
    const peftKeys = (await readSafetensors(path.join(VIT, 'adapter', 'adapter_model.safetensors'))).tensors;
    const expected = [...peftKeys.keys()].filter((k) => !k.includes('.fc1.')).sort();
    assert.deepEqual([...ourKeys.keys()].sort(), expected);
    for (const key of expected) {
      assert.deepEqual(ourKeys.get(key)!.shape, peftKeys.get(key)!.shape, key);
      assert.equal(ourKeys.get(key)!.dtype, 'F32');
    }
    const extras = await json(path.join(outDir, 'lorafuse.json'));
    assert.equal(extras.mode, 'lora');
    assert.equal(extras.naming, 'transformers5');
    assert.equal(extras.training.steps, 2);
  });

  it('writes transformers 4.x names on request and records it', async () => {
    const dir = scratchDir();
    const outDir = path.join(dir, 'adapter');
    await finetune({
      modelDir: path.join(VIT, 'model'),
      dataset: await tinyDataset(dir),
      mode: 'llora',
      outDir,
      steps: 1,
      batchSize: 3,
      rank: 2,
      targetModules: ['query', 'value'],
      validationFraction: 0,
      naming: 'transformers4',
    });
    const keys = [...(await readSafetensors(path.join(outDir, 'adapter_model.safetensors'))).tensors.keys()];
    assert.ok(keys.includes('base_model.model.vit.encoder.layer.1.attention.attention.query.lora_A.weight'));
    assert.ok(keys.includes('base_model.model.classifier.weight'));
    assert.ok(!keys.some((k) => k.includes('q_proj')));
    assert.deepEqual((await json(path.join(outDir, 'adapter_config.json'))).target_modules, [
      'query',
      'value',
    ]);
    assert.equal((await json(path.join(outDir, 'lorafuse.json'))).naming, 'transformers4');
    const init = [...(await readSafetensors(path.join(outDir, 'lorafuse_init.safetensors'))).tensors.keys()];
    assert.deepEqual(init.sort(), keys.filter((k) => k.includes('lora_')).sort());
  });

  it('datasets keep task, split and class names in __metadata__', async () => {
    const file = path.join(scratchDir(), 'd.safetensors');
    const { tensors } = await readSafetensors(path.join(VIT, 'inputs.safetensors'));
    await writeDataset(file, {
      inputs: new Map([['pixel_values', tensors.get('pixel_values')!]]),
      labels: Int32Array.from([2, 0, 1]),
      task: 'cifar-ish',
      split: 'test',
      classNames: ['cat', 'dog', 'eel'],
    });
    const read = await readDataset(file);
    assert.equal(read.task, 'cifar-ish');
    assert.equal(read.split, 'test');
    assert.deepEqual(read.classNames, ['cat', 'dog', 'eel']);
    assert.deepEqual([...read.labels], [2, 0, 1]);
  });
});
