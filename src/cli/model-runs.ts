// The work of `lorafuse predict | finetune | evaluate` once model-commands.ts has checked the arguments
// and files: this module loads tfjs, so nothing imports it before the arguments are known to be good.
import { loadRuntimeSettings } from '../config.ts';
import { backendOptions, initBackend } from '../model/backend.ts';
import { evaluateModel } from '../model/evaluate-model.ts';
import { contextFor, predict } from '../model/inference.ts';
import { type HostTensor, readSafetensors, writeSafetensorsFile } from '../model/io/host-tensors.ts';
import { loadModel } from '../model/load-model.ts';
import { loadAdapter } from '../model/lora/peft-adapter.ts';
import { readDataset } from '../model/train/dataset.ts';
import { finetune } from '../model/train/finetune.ts';
import type { FinetuneMode } from '../model/train/trainable.ts';
import type { CommandOutput, ParsedValues } from './args.ts';

export type ModelCommand = 'predict' | 'finetune' | 'evaluate';

let out: CommandOutput;

/** Starts the backend and runs one command on arguments already checked; throws on failure. */
export async function runCheckedModelCommand(
  name: ModelCommand,
  values: ParsedValues,
  io: CommandOutput,
): Promise<void> {
  out = io;
  await initBackend(backendOptions(loadRuntimeSettings()));
  if (name === 'predict') await runPredict(values);
  else if (name === 'finetune') await runFinetune(values);
  else await runEvaluate(values);
}

/** A string option (its presence was checked when required). */
function text(values: ParsedValues, key: string): string | undefined {
  const value = values[key];
  return typeof value === 'string' ? value : undefined;
}

function required(values: ParsedValues, key: string): string {
  return text(values, key) as string;
}

function numberOption(values: ParsedValues, key: string): number | undefined {
  const value = values[key];
  return value === undefined ? undefined : Number(value);
}

/** --model DIR [--head FILE] [--adapter DIR], as predict and evaluate take them. */
async function loadModelAndAdapter(values: ParsedValues) {
  const head = text(values, 'head');
  const model = await loadModel(required(values, 'model'), { extraWeights: head ? [head] : [] });
  const adapterDir = text(values, 'adapter');
  const adapter = adapterDir ? await loadAdapter(adapterDir, model) : null;
  return { model, adapter };
}

async function runPredict(values: ParsedValues): Promise<void> {
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

async function runFinetune(values: ParsedValues): Promise<void> {
  const mode = required(values, 'mode');
  const naming = text(values, 'naming') ?? 't5';
  const runtimes = numberOption(values, 'runtimes') ?? 1;
  const result = await finetune({
    modelDir: required(values, 'model'),
    dataset: required(values, 'dataset'),
    mode: mode as FinetuneMode,
    outDir: required(values, 'out'),
    rank: numberOption(values, 'rank'),
    alpha: numberOption(values, 'alpha'),
    useRslora: values.rslora === true,
    targetModules: text(values, 'target-modules')
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
    extraWeights: text(values, 'head') ? [required(values, 'head')] : undefined,
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

async function runEvaluate(values: ParsedValues): Promise<void> {
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
