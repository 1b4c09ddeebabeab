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
const oursCpu: Record<string, number> = {};
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
  const cpuStart = process.cpuUsage();
  ours[mode] = (await run(steps, mode)).samplesPerSecond;
  const cpu = process.cpuUsage(cpuStart);
  // Samples per CPU-second (includes loading the model and data): robust when other processes share the cores.
  oursCpu[mode] = (steps * batchSize) / ((cpu.user + cpu.system) / 1e6);
}

type Reference = Record<string, number> & { cpu: Record<string, number> };

/** PyTorch's samples/s per mode with `threads` intra-op threads (0: torch's default, one per core). */
function pytorch(threads: number): Reference | null {
  if (values['no-reference']) return null;
  const args = ['--model', modelDir, '--dataset', datasetFile, '--steps', String(steps)];
  args.push('--batch-size', String(batchSize), '--threads', String(threads));
  try {
    const text = execFileSync('python3', ['bench/reference/train_reference.py', ...args], {
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'ignore'],
    });
    return JSON.parse(text.trim().split('\n').at(-1)!);
  } catch (error) {
    console.log(`PyTorch reference unavailable: ${(error as Error).message.split('\n')[0]}`);
    return null;
  }
}
// wasm runs one thread per runtime, so single-threaded PyTorch is the like-for-like figure.
const [multi, single] = [pytorch(0), pytorch(1)];

const cell = (v: number | undefined, width: number) =>
  (v === undefined ? 'n/a' : v.toFixed(1)).padStart(width);
const ratio = (a: number, b: number | undefined) => (b ? (a / b).toFixed(2) : 'n/a').padStart(7);
function table(title: string, mine: Record<string, number>, pick: (r: Reference) => Record<string, number>) {
  console.log(`\n${title}`);
  console.log(`mode     lorafuse  torch(${multi?.threads ?? '?'}t)   ratio  torch(1t)   ratio`);
  for (const mode of modes) {
    const a = multi ? pick(multi)[mode] : undefined;
    const b = single ? pick(single)[mode] : undefined;
    console.log(
      `${mode.padEnd(7)} ${cell(mine[mode], 9)} ${cell(a, 10)} ${ratio(mine[mode], a)} ${cell(b, 10)} ${ratio(mine[mode], b)}`,
    );
  }
}

console.log(
  `\nbench:train — ViT 4×64, 28×28, batch ${batchSize}, ${steps} timed steps, lorafuse on ${backend.choice}`,
);
table('samples/s (wall clock)', ours, (r) => r);
table(
  'samples per CPU-second (fair when other processes share the cores; PyTorch counts all its threads)',
  oursCpu,
  (r) => r.cpu,
);
console.log(
  `\nL-LoRA step time / LoRA step time = ${(ours.lora / ours.llora).toFixed(2)} wall, ${(oursCpu.lora / oursCpu.llora).toFixed(2)} CPU (target ≤ 1.2)`,
);
for (const reference of [multi, single]) {
  if (!reference) continue;
  const worst = Math.min(...modes.map((m) => ours[m] / reference[m]));
  const worstCpu = Math.min(...modes.map((m) => oursCpu[m] / reference.cpu[m]));
  console.log(
    `lowest lorafuse / PyTorch(${reference.threads}t) = ${worst.toFixed(2)} wall, ${worstCpu.toFixed(2)} CPU (target ≥ 0.5)`,
  );
}
await rm(work, { recursive: true, force: true });
