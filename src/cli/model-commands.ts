import { parseArgs } from 'node:util';
import { ConfigError, loadRuntimeSettings } from '../config.ts';
import { backendOptions, initBackend } from '../model/backend.ts';
import { evaluateModel } from '../model/evaluate-model.ts';
import { contextFor, predict } from '../model/inference.ts';
import { type HostTensor, readSafetensors, writeSafetensorsFile } from '../model/io/host-tensors.ts';
import { loadModel } from '../model/load-model.ts';
import { loadAdapter } from '../model/lora/peft-adapter.ts';
import { readDataset } from '../model/train/dataset.ts';
import { finetune } from '../model/train/finetune.ts';
import type { FinetuneMode } from '../model/train/trainable.ts';

export type ModelCommand = 'predict' | 'finetune' | 'evaluate';

const USAGE: Record<ModelCommand, string> = {
  predict:
    'lorafuse predict --model DIR [--adapter DIR] [--head FILE] --inputs FILE --out FILE [--batch-size N]\n' +
    '  writes logits (and image_embeds for clip_vision_model) as safetensors',
  finetune:
    'lorafuse finetune --model DIR --dataset FILE --mode lora|llora|full --out DIR [--rank R] [--alpha A] [--rslora]\n' +
    '  [--target-modules a,b] [--steps N] [--lr X] [--batch-size N] [--seed S] [--weight-decay X] [--max-grad-norm X]\n' +
    '  [--warmup-steps N] [--validation-fraction X] [--eval-every N] [--checkpoint-every N] [--naming t5|t4] [--head FILE]\n' +
    '  [--runtimes N]  (wasm: train data-parallel over N runtimes, this thread and N−1 worker threads)',
  evaluate:
    'lorafuse evaluate --model DIR [--adapter DIR] [--head FILE] --dataset FILE [--batch-size N]\n  prints accuracy and loss as JSON',
};

class UsageError extends Error {}

/** Where a command prints (tests capture it). */
export interface CommandOutput {
  stdout(text: string): void;
  stderr(text: string): void;
}

let out: CommandOutput;

/** Runs `lorafuse predict|finetune|evaluate` with the arguments after the command name; returns the exit code. */
export async function runModelCommand(
  name: ModelCommand,
  argv: string[],
  io: CommandOutput = { stdout: (t) => process.stdout.write(t), stderr: (t) => process.stderr.write(t) },
): Promise<number> {
  out = io;
  try {
    if (argv.includes('--help') || argv.includes('-h')) {
      out.stdout(`${USAGE[name]}\n`);
      return 0;
    }
    await initBackend(backendOptions(loadRuntimeSettings()));
    if (name === 'predict') await runPredict(argv);
    else if (name === 'finetune') await runFinetune(argv);
    else await runEvaluate(argv);
    return 0;
  } catch (error) {
    if (error instanceof ConfigError) throw error; // main prints it as a configuration error (exit 2)
    const usage =
      error instanceof UsageError || (error as { code?: string }).code?.startsWith('ERR_PARSE_ARGS');
    out.stderr(`lorafuse ${name}: ${(error as Error).message}\n${usage ? `${USAGE[name]}\n` : ''}`);
    return usage ? 2 : 1;
  }
}

function required(values: Record<string, unknown>, key: string): string {
  const value = values[key];
  if (typeof value !== 'string' || value === '') throw new UsageError(`--${key} is required`);
  return value;
}

function numberOption(values: Record<string, unknown>, key: string): number | undefined {
  const value = values[key];
  if (value === undefined) return undefined;
  const parsed = Number(value);
  if (!Number.isFinite(parsed)) throw new UsageError(`--${key} must be a number, got ${value}`);
  return parsed;
}

/** --model DIR [--head FILE] [--adapter DIR], as predict and evaluate take them. */
async function loadModelAndAdapter(values: { model?: string; head?: string; adapter?: string }) {
  const model = await loadModel(required(values, 'model'), {
    extraWeights: values.head ? [values.head] : [],
  });
  const adapter = values.adapter ? await loadAdapter(values.adapter, model) : null;
  return { model, adapter };
}

async function runPredict(argv: string[]): Promise<void> {
  const { values } = parseArgs({
    args: argv,
    options: {
      model: { type: 'string' },
      adapter: { type: 'string' },
      head: { type: 'string' },
      inputs: { type: 'string' },
      out: { type: 'string' },
      'batch-size': { type: 'string' },
    },
  });
  const { model, adapter } = await loadModelAndAdapter(values);
  const { tensors } = await readSafetensors(required(values, 'inputs'));
  const predictions = await predict(model, tensors, {
    adapter,
    batchSize: numberOption(values, 'batch-size'),
  });
  const entries: Array<[string, HostTensor]> = [];
  if (predictions.logits) entries.push(['logits', predictions.logits]);
  if (predictions.imageEmbeds) entries.push(['image_embeds', predictions.imageEmbeds]);
  await writeSafetensorsFile(required(values, 'out'), entries, { format: 'pt' });
  out.stdout(
    `${JSON.stringify({ out: values.out, outputs: entries.map(([n, t]) => ({ name: n, shape: t.shape })) })}\n`,
  );
  adapter?.dispose();
  model.dispose();
}

async function runFinetune(argv: string[]): Promise<void> {
  const { values } = parseArgs({
    args: argv,
    options: {
      model: { type: 'string' },
      dataset: { type: 'string' },
      mode: { type: 'string' },
      out: { type: 'string' },
      rank: { type: 'string' },
      alpha: { type: 'string' },
      rslora: { type: 'boolean' },
      'target-modules': { type: 'string' },
      steps: { type: 'string' },
      lr: { type: 'string' },
      'batch-size': { type: 'string' },
      seed: { type: 'string' },
      'weight-decay': { type: 'string' },
      'max-grad-norm': { type: 'string' },
      'warmup-steps': { type: 'string' },
      'validation-fraction': { type: 'string' },
      'eval-every': { type: 'string' },
      'checkpoint-every': { type: 'string' },
      naming: { type: 'string' },
      head: { type: 'string' },
      runtimes: { type: 'string' },
    },
  });
  const mode = required(values, 'mode');
  if (!['lora', 'llora', 'full'].includes(mode))
    throw new UsageError(`--mode must be lora, llora or full, got ${mode}`);
  const naming = values.naming ?? 't5';
  if (naming !== 't5' && naming !== 't4') throw new UsageError(`--naming must be t5 or t4, got ${naming}`);
  const runtimes = numberOption(values, 'runtimes') ?? 1;
  if (!Number.isInteger(runtimes) || runtimes < 1 || runtimes > 16)
    throw new UsageError(`--runtimes must be a whole number from 1 to 16, got ${values.runtimes}`);
  const result = await finetune({
    modelDir: required(values, 'model'),
    dataset: required(values, 'dataset'),
    mode: mode as FinetuneMode,
    outDir: required(values, 'out'),
    rank: numberOption(values, 'rank'),
    alpha: numberOption(values, 'alpha'),
    useRslora: values.rslora,
    targetModules: values['target-modules']
      ?.split(',')
      .map((s) => s.trim())
      .filter(Boolean),
    steps: numberOption(values, 'steps'),
    learningRate: numberOption(values, 'lr'),
    batchSize: numberOption(values, 'batch-size'),
    seed: numberOption(values, 'seed'),
    weightDecay: numberOption(values, 'weight-decay'),
    maxGradNorm: numberOption(values, 'max-grad-norm'),
    warmupSteps: numberOption(values, 'warmup-steps'),
    validationFraction: numberOption(values, 'validation-fraction'),
    evalEvery: numberOption(values, 'eval-every'),
    checkpointEvery: numberOption(values, 'checkpoint-every'),
    naming: naming === 't4' ? 'transformers4' : 'transformers5',
    extraWeights: values.head ? [values.head] : undefined,
    workers: runtimes,
    runtimeIdleMs: loadRuntimeSettings().runtimeIdleMs,
    onProgress: ({ step, steps, loss }) => {
      if (step % 10 === 0 || step === steps) out.stderr(`step ${step}/${steps} loss ${loss.toFixed(4)}\n`);
    },
  });
  const last = result.validation.at(-1);
  out.stdout(
    `${JSON.stringify({
      kind: result.kind,
      out: result.outDir,
      files: result.files,
      mode: result.mode,
      steps: result.steps,
      finalLoss: result.lossCurve.at(-1)?.loss ?? null,
      validationAccuracy: last?.accuracy ?? null,
      resumedFromStep: result.resumedFromStep,
      samplesPerSecond: Number(result.samplesPerSecond.toFixed(2)),
    })}\n`,
  );
}

async function runEvaluate(argv: string[]): Promise<void> {
  const { values } = parseArgs({
    args: argv,
    options: {
      model: { type: 'string' },
      adapter: { type: 'string' },
      head: { type: 'string' },
      dataset: { type: 'string' },
      'batch-size': { type: 'string' },
    },
  });
  const { model, adapter } = await loadModelAndAdapter(values);
  const dataset = await readDataset(required(values, 'dataset'));
  const result = await evaluateModel(
    model,
    contextFor(model, adapter),
    dataset,
    numberOption(values, 'batch-size') ?? 64,
  );
  out.stdout(
    `${JSON.stringify({ task: dataset.task, split: dataset.split, examples: result.examples, accuracy: result.accuracy, loss: result.loss })}\n`,
  );
  adapter?.dispose();
  model.dispose();
}
