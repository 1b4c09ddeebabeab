import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import * as tf from '@tensorflow/tfjs';
import { ForwardContext } from '../../src/model/forward-context.ts';
import { evaluateModel } from '../../src/model/evaluate-model.ts';
import { readSafetensors } from '../../src/model/io/host-tensors.ts';
import { loadModel } from '../../src/model/load-model.ts';
import { initLoraFactors } from '../../src/model/lora/lora-init.ts';
import { loadAdapter } from '../../src/model/lora/peft-adapter.ts';
import { seededUniform } from '../../src/model/random.ts';
import type { Dataset } from '../../src/model/train/dataset.ts';
import { finetune } from '../../src/model/train/finetune.ts';
import { FIXTURES, removeScratchDirs, scratchDir, testBackend } from './helpers.ts';

const MLP = path.join(FIXTURES, 'mlp', 'model'); // input 3×4×4 = 48, hidden [32, 16], 4 classes

/** A learnable task for the tiny MLP: the label is the argmax of a fixed random linear map of the pixels. */
function syntheticDataset(n: number, seed: number): Dataset {
  const uniform = seededUniform(seed);
  const pixels = Float32Array.from({ length: n * 48 }, () => uniform() * 2 - 1);
  const map = Float32Array.from({ length: 48 * 4 }, () => uniform() * 2 - 1);
  const labels = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    let best = 0;
    let bestScore = Number.NEGATIVE_INFINITY;
    for (let c = 0; c < 4; c++) {
      let score = 0;
      for (let p = 0; p < 48; p++) score += pixels[i * 48 + p] * map[p * 4 + c];
      if (score > bestScore) [best, bestScore] = [c, score];
    }
    labels[i] = best;
  }
  return {
    inputs: new Map([['pixel_values', { dtype: 'F32', shape: [n, 3, 4, 4], data: pixels }]]),
    labels,
    task: 'synthetic',
    split: 'train',
    classNames: null,
  };
}

const common = { modelDir: MLP, steps: 60, batchSize: 32, learningRate: 1e-2, seed: 5, evalEvery: 20 };

describe('fine-tuning', () => {
  before(testBackend);
  after(removeScratchDirs);
  const dataset = syntheticDataset(400, 11);

  it('lora: loss falls, validation accuracy beats chance, and the written adapter reproduces it', async () => {
    const outDir = path.join(scratchDir(), 'adapter');
    const result = await finetune({ ...common, dataset, mode: 'lora', rank: 4, outDir });
    const first = result.lossCurve.slice(0, 5).reduce((s, p) => s + p.loss, 0) / 5;
    const last = result.lossCurve.slice(-5).reduce((s, p) => s + p.loss, 0) / 5;
    assert.ok(last < first * 0.8, `loss ${first} -> ${last}`);
    const finalValidation = result.validation.at(-1)!;
    assert.ok(finalValidation.accuracy > 0.4, `validation accuracy ${finalValidation.accuracy}`);
    assert.deepEqual(result.files.sort(), [
      'adapter_config.json',
      'adapter_model.safetensors',
      'lorafuse.json',
      'lorafuse_init.safetensors',
    ]);
    // Plain LoRA records its expansion point too: A₀ as drawn from the seed, B₀ = 0.
    const recorded = (await readSafetensors(path.join(outDir, 'lorafuse_init.safetensors'))).tensors;
    const [aKey] = [...recorded.keys()].filter((k) => k.endsWith('lora_A.weight')).sort();
    const a0 = recorded.get(aKey)!;
    const module = aKey.replace('base_model.model.', '').replace('.lora_A.weight', '');
    const expected = initLoraFactors(module, a0.shape[1], 1, a0.shape[0], common.seed).a;
    assert.deepEqual(Array.from(a0.data as Float32Array), Array.from(expected));
    const b0 = recorded.get(aKey.replace('lora_A', 'lora_B'))!;
    assert.ok((b0.data as Float32Array).every((v) => v === 0));

    const model = await loadModel(MLP);
    const adapter = await loadAdapter(outDir, model);
    const { splitValidation } = await import('../../src/model/train/dataset.ts');
    const { validation } = splitValidation(dataset, 0.1, common.seed);
    const evaluated = await evaluateModel(
      model,
      new ForwardContext(model.params, adapter.modules, adapter.overrides),
      validation!,
    );
    assert.equal(evaluated.accuracy, finalValidation.accuracy);
    assert.ok(Math.abs(evaluated.loss - finalValidation.loss) < 1e-5);
    adapter.dispose();
    model.dispose();
  });

  it('llora: A stays at the recorded A₀, B₀ = 0 is recorded, and PEFT’s plain reading gives the same logits', async () => {
    const outDir = path.join(scratchDir(), 'adapter');
    const result = await finetune({ ...common, dataset, mode: 'llora', rank: 4, outDir });
    assert.ok(result.files.includes('lorafuse_init.safetensors'));
    const extras = JSON.parse(await readFile(path.join(outDir, 'lorafuse.json'), 'utf8'));
    assert.equal(extras.mode, 'llora');
    assert.equal(extras.seed, common.seed);
    const weights = (await readSafetensors(path.join(outDir, 'adapter_model.safetensors'))).tensors;
    const init = (await readSafetensors(path.join(outDir, 'lorafuse_init.safetensors'))).tensors;
    for (const [key, t] of init) {
      if (key.endsWith('lora_A.weight')) assert.deepEqual(weights.get(key)!.data, t.data);
      else assert.ok((t.data as Float32Array).every((v) => v === 0));
    }
    const trainedB = weights.get('base_model.model.layers.0.lora_B.weight')!.data as Float32Array;
    assert.ok(trainedB.some((v) => v !== 0));

    const model = await loadModel(MLP);
    const linearized = await loadAdapter(outDir, model);
    const plain = await loadAdapter(outDir, model, { asPlainLora: true });
    assert.ok([...linearized.modules.values()].every((m) => m.linearized));
    assert.ok([...plain.modules.values()].every((m) => !m.linearized));
    const logits = (a: typeof plain) =>
      tf.tidy(() =>
        model.architecture
          .forward(
            new ForwardContext(model.params, a.modules, a.overrides),
            { pixelValues: tf.ones([2, 3, 4, 4]) },
            model.config,
          )
          .logits!.dataSync(),
      );
    assert.deepEqual(logits(linearized), logits(plain));
    linearized.dispose();
    plain.dispose();
    model.dispose();
  });

  it('full: writes a model folder that loads and keeps its validation accuracy', async () => {
    const outDir = path.join(scratchDir(), 'model');
    const result = await finetune({ ...common, dataset, mode: 'full', learningRate: 3e-3, outDir });
    assert.equal(result.kind, 'model');
    const model = await loadModel(outDir);
    const { splitValidation } = await import('../../src/model/train/dataset.ts');
    const { validation } = splitValidation(dataset, 0.1, common.seed);
    const evaluated = await evaluateModel(model, new ForwardContext(model.params), validation!);
    assert.equal(evaluated.accuracy, result.validation.at(-1)!.accuracy);
    model.dispose();
  });

  it('resumes from the last checkpoint after a crash and ends where an uninterrupted run ends', async () => {
    const root = scratchDir();
    const options = { ...common, steps: 20, dataset, mode: 'lora' as const, rank: 2, checkpointEvery: 5 };
    const crashed = await finetune({ ...options, outDir: path.join(root, 'a'), stopAfter: 12 });
    assert.equal(crashed.finished, false);
    const resumed = await finetune({ ...options, outDir: path.join(root, 'a') });
    assert.equal(resumed.resumedFromStep, 10);
    assert.equal(resumed.lossCurve.length, 20);
    const straight = await finetune({ ...options, outDir: path.join(root, 'b') });
    const a = (await readSafetensors(path.join(root, 'a', 'adapter_model.safetensors'))).tensors;
    const b = (await readSafetensors(path.join(root, 'b', 'adapter_model.safetensors'))).tensors;
    for (const [key, t] of b) assert.deepEqual(a.get(key)!.data, t.data, key);
    assert.deepEqual(
      resumed.lossCurve.map((p) => p.loss),
      straight.lossCurve.map((p) => p.loss),
    );
  });

  it('keeps tensor memory flat across thousands of steps', async () => {
    const root = scratchDir();
    const before = tf.memory().numTensors;
    const live: number[] = [];
    const reported = new Map<number, number | null>();
    const result = await finetune({
      ...common,
      steps: 2000,
      evalEvery: 500,
      dataset,
      mode: 'lora',
      outDir: path.join(root, 'x'),
      onProgress: ({ step, valAccuracy }) => {
        if (step % 250 === 0) live.push(tf.memory().numTensors);
        reported.set(step, valAccuracy);
      },
    });
    // Progress carries the latest validation accuracy: none before step 500, then each evaluation's.
    assert.equal(reported.get(499), null);
    for (const point of result.validation) assert.equal(reported.get(point.step), point.accuracy);
    assert.equal(reported.get(1999), result.validation.find((p) => p.step === 1500)?.accuracy);
    assert.equal(live.length, 8);
    assert.ok(
      live.every((n) => n === live[0]),
      `live tensors drifted: ${live.join(', ')}`,
    );
    for (const mode of ['llora', 'full'] as const) {
      await finetune({ ...common, steps: 200, dataset, mode, outDir: path.join(root, mode) });
    }
    assert.equal(tf.memory().numTensors, before);
  });
});

describe('data-parallel fine-tuning', () => {
  before(testBackend);
  after(removeScratchDirs);

  it('two runtimes (this thread and a worker thread) follow the single-runtime loss curve', async () => {
    const dataset = syntheticDataset(200, 13);
    const options = { ...common, steps: 8, evalEvery: 8, dataset, mode: 'lora' as const, rank: 2 };
    const single = await finetune({ ...options, outDir: path.join(scratchDir(), 'one') });
    const parallel = await finetune({ ...options, outDir: path.join(scratchDir(), 'two'), workers: 2 });
    const a = single.lossCurve.map((p) => p.loss);
    const b = parallel.lossCurve.map((p) => p.loss);
    for (let i = 0; i < a.length; i++)
      assert.ok(Math.abs(a[i] - b[i]) <= 1e-4 * Math.abs(a[i]) + 1e-5, `step ${i + 1}: ${a[i]} vs ${b[i]}`);
    assert.equal(parallel.validation.at(-1)!.accuracy, single.validation.at(-1)!.accuracy);
  });
});

describe('fine-tuning BERT on wasm', () => {
  before(testBackend);
  after(removeScratchDirs);

  it('full mode trains the word embeddings through the lookup’s one-hot gradient', async () => {
    const bert = path.join(FIXTURES, 'bert');
    const { tensors } = await readSafetensors(path.join(bert, 'inputs.safetensors'));
    const dataset: Dataset = {
      inputs: new Map([
        ['input_ids', tensors.get('input_ids')!],
        ['attention_mask', tensors.get('attention_mask')!],
      ]),
      labels: Int32Array.from([0, 1, 2]),
      task: 'tokens',
      split: 'train',
      classNames: null,
    };
    const outDir = path.join(scratchDir(), 'bert');
    const result = await finetune({
      modelDir: path.join(bert, 'model'),
      dataset,
      mode: 'full',
      outDir,
      steps: 3,
      batchSize: 3,
      learningRate: 1e-2,
      validationFraction: 0,
    });
    assert.equal(result.steps, 3);
    const name = 'bert.embeddings.word_embeddings.weight';
    const before = (await readSafetensors(path.join(bert, 'model', 'model.safetensors'))).tensors.get(name)!;
    const after = (await readSafetensors(path.join(outDir, 'model.safetensors'))).tensors.get(name)!;
    // Tokens the attention mask keeps; padding (id 0) is masked out, so like an unused row it gets no gradient.
    const mask = tensors.get('attention_mask')!.data as BigInt64Array;
    const ids = new Set(
      Array.from(tensors.get('input_ids')!.data as BigInt64Array, Number).filter((_, i) => mask[i] === 1n),
    );
    assert.ok(!ids.has(0));
    const hidden = before.shape[1];
    const rowChanged = (row: number) =>
      (after.data as Float32Array)
        .subarray(row * hidden, (row + 1) * hidden)
        .some((v, i) => v !== (before.data as Float32Array)[row * hidden + i]);
    for (const id of ids) assert.ok(rowChanged(id), `row ${id} of a used token did not move`);
    // The padding row (zeros, padding_idx 0) sits only under masked positions: no gradient, still zero.
    assert.ok((after.data as Float32Array).subarray(0, hidden).every((v) => v === 0));
    const unused = Array.from({ length: before.shape[0] }, (_, i) => i).find((i) => i > 0 && !ids.has(i))!;
    // Unused rows move only by weight decay: a uniform shrink, never a gradient step.
    const ratio =
      (after.data as Float32Array)[unused * hidden] / (before.data as Float32Array)[unused * hidden];
    for (let j = 0; j < hidden; j++) {
      const b = (before.data as Float32Array)[unused * hidden + j];
      assert.ok(Math.abs((after.data as Float32Array)[unused * hidden + j] - b * ratio) < 1e-6);
    }
  });
});
