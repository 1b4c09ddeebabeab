// npm run bench:train — samples/s of one LoRA, L-LoRA and full fine-tuning step on a small ViT (4 layers, hidden
// 64, 28×28 MNIST digits) on lorafuse's backend (wasm here) against the same model and step in PyTorch on CPU
// (bench/reference/train_reference.py), in one run. Targets: L-LoRA step ≤ 1.2× LoRA's time; lorafuse ≥ 0.5×
// PyTorch's samples/s. Options: --steps N (timed steps, default 30), --batch-size N (32), --no-reference.
import { execFileSync } from 'node:child_process';
import { mkdir, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { buildMnistDataset } from '../../src/eval/datasets/mnist.ts';
import { initBackend } from '../../src/model/backend.ts';
import { finetune } from '../../src/model/train/finetune.ts';
import { writeDataset } from '../../src/model/train/dataset.ts';
import { writeBenchVit } from './tiny-vit.ts';

const { values } = parseArgs({
  options: {
    steps: { type: 'string', default: '30' },
    'batch-size': { type: 'string', default: '32' },
    'no-reference': { type: 'boolean', default: false },
  },
});
const steps = Number(values.steps);
const batchSize = Number(values['batch-size']);
const work = path.join(os.tmpdir(), `lorafuse-bench-train-${process.pid}`);
await mkdir(work, { recursive: true });
const modelDir = path.join(work, 'vit');
const datasetFile = path.join(work, 'mnist.safetensors');
await writeBenchVit(modelDir);
await writeDataset(datasetFile, buildMnistDataset({ task: 'digits', split: 'train', perDigit: 64 }));
const backend = await initBackend();

const modes = ['lora', 'llora', 'full'] as const;
const ours: Record<string, number> = {};
for (const mode of modes) {
  const run = (n: number, out: string) =>
    finetune({
      modelDir,
      dataset: datasetFile,
      mode,
      outDir: path.join(work, out),
      steps: n,
      batchSize,
      rank: 8,
      alpha: 16,
      targetModules: ['query', 'value'],
      validationFraction: 0,
      evalEvery: 1_000_000,
    });
  await run(3, `${mode}-warm`); // kernels compiled, allocator warm
  ours[mode] = (await run(steps, mode)).samplesPerSecond;
}

let reference: Record<string, number> | null = null;
if (!values['no-reference']) {
  try {
    const text = execFileSync(
      'python3',
      [
        'bench/reference/train_reference.py',
        '--model',
        modelDir,
        '--dataset',
        datasetFile,
        '--steps',
        String(steps),
        '--batch-size',
        String(batchSize),
      ],
      { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] },
    );
    reference = JSON.parse(text.trim().split('\n').at(-1)!);
  } catch (error) {
    console.log(`PyTorch reference unavailable: ${(error as Error).message.split('\n')[0]}`);
  }
}

console.log(
  `\nbench:train — ViT 4×64, 28×28, batch ${batchSize}, ${steps} timed steps, lorafuse on ${backend.choice}`,
);
console.log('mode    lorafuse samples/s   PyTorch samples/s   lorafuse / PyTorch');
for (const mode of modes) {
  const theirs = reference?.[mode];
  const ratio = theirs ? (ours[mode] / theirs).toFixed(2) : 'n/a';
  console.log(
    `${mode.padEnd(7)} ${ours[mode].toFixed(1).padStart(18)} ${(theirs?.toFixed(1) ?? 'n/a').padStart(19)} ${ratio.padStart(20)}`,
  );
}
const llora = ours.lora / ours.llora;
console.log(`L-LoRA step time / LoRA step time = ${llora.toFixed(2)} (target ≤ 1.2)`);
if (reference) {
  const worst = Math.min(...modes.map((m) => ours[m] / reference[m]));
  console.log(
    `lowest lorafuse / PyTorch samples/s = ${worst.toFixed(2)} (target ≥ 0.5; PyTorch threads: ${reference.threads})`,
  );
}
await rm(work, { recursive: true, force: true });
