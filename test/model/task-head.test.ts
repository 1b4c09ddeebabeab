// Fine-tuning through a task head that is not the model's classifier: a fresh seeded head when the dataset's
// classes differ from the classifier's, and a stored head (frozen by default, as the paper's per-task heads).
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { MNIST_BACKBONE_DIR } from '../../src/eval/datasets/mnist-backbone.ts';
import { buildStudyTask } from '../../src/eval/datasets/mnist-suite.ts';
import { readCheckpoint, readSafetensors } from '../../src/model/io/host-tensors.ts';
import { finetune } from '../../src/model/train/finetune.ts';
import { freshHead } from '../../src/model/train/task-head.ts';
import { removeScratchDirs, scratchDir, testBackend } from './helpers.ts';

const sizes = { train: 64, validation: 16, test: 16 };
/** The backbone's hidden width (config.json hidden_size): a head is [classes, HIDDEN]. */
const HIDDEN = (
  JSON.parse(readFileSync(path.join(MNIST_BACKBONE_DIR, 'config.json'), 'utf8')) as { hidden_size: number }
).hidden_size;
const common = { modelDir: MNIST_BACKBONE_DIR, steps: 3, batchSize: 16, seed: 4, evalEvery: 3 };

async function adapterTensors(dir: string) {
  return (await readSafetensors(path.join(dir, 'adapter_model.safetensors'))).tensors;
}

describe('fine-tuning through a task head', () => {
  before(testBackend);
  after(removeScratchDirs);
  const parity = buildStudyTask('parity', sizes, 1).train; // 2 classes; the backbone's classifier has 5

  it('a dataset with other classes than the classifier gets a fresh head, trained and saved', async () => {
    const outDir = path.join(scratchDir(), 'fresh');
    const result = await finetune({ ...common, dataset: parity, mode: 'lora', rank: 2, outDir });
    assert.equal(result.finished, true);
    const saved = await adapterTensors(outDir);
    const weight = saved.get('base_model.model.classifier.weight');
    assert.deepEqual(weight?.shape, [2, HIDDEN]);
    // Trained: it moved away from the seeded initialisation.
    const initial = freshHead(2, HIDDEN, common.seed).weight.data as Float32Array;
    const moved = (weight!.data as Float32Array).some((v, i) => Math.abs(v - initial[i]) > 1e-6);
    assert.ok(moved, 'the fresh head was trained');
    const extras = JSON.parse(await readFile(path.join(outDir, 'lorafuse.json'), 'utf8'));
    assert.deepEqual(extras.training.head, { source: 'fresh', classes: 2, trained: true });
  });

  it('a stored head is frozen by default: an L-LoRA adapter saves no head, a full model keeps the base classifier', async () => {
    const head = freshHead(2, HIDDEN, 99);
    const adapterDir = path.join(scratchDir(), 'llora');
    await finetune({
      ...common,
      dataset: parity,
      mode: 'llora',
      rank: 2,
      outDir: adapterDir,
      head,
      headSource: 'hed_x',
    });
    const saved = await adapterTensors(adapterDir);
    assert.equal(
      [...saved.keys()].some((k) => k.includes('classifier')),
      false,
    );
    const config = JSON.parse(await readFile(path.join(adapterDir, 'adapter_config.json'), 'utf8'));
    assert.ok(!config.modules_to_save, 'no modules_to_save');

    const modelDir = path.join(scratchDir(), 'full');
    await finetune({
      ...common,
      dataset: parity,
      mode: 'full',
      outDir: modelDir,
      head,
      headSource: 'hed_x',
      learningRate: 1e-3,
    });
    const base = await readCheckpoint(MNIST_BACKBONE_DIR);
    const tuned = await readCheckpoint(modelDir);
    assert.deepEqual(tuned.get('classifier.weight')!.data, base.get('classifier.weight')!.data);
    const name = 'vit.encoder.layer.0.attention.attention.query.weight';
    const changed = (tuned.get(name)!.data as Float32Array).some(
      (v, i) => v !== (base.get(name)!.data as Float32Array)[i],
    );
    assert.ok(changed, 'the body was trained');
  });

  it('refuses a head whose classes differ from the dataset', async () => {
    await assert.rejects(
      finetune({
        ...common,
        dataset: parity,
        mode: 'lora',
        outDir: path.join(scratchDir(), 'bad'),
        head: freshHead(3, HIDDEN, 1),
      }),
      /3 classes but the dataset's class_names has 2/,
    );
  });
});
