// Fine-tuning (LoRA, L-LoRA or full) of a model folder on a dataset: the training run from settings to written
// adapter or model.
import { createHash } from 'node:crypto';
import { copyFile, mkdir, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { ModelInputError } from '../errors.ts';
import { evaluateModel } from '../evaluate-model.ts';
import { ForwardContext } from '../forward-context.ts';
import type { HostTensor } from '../io/host-tensors.ts';
import { writeSafetensorsFile } from '../io/host-tensors.ts';
import { type LoadedModel, loadModel } from '../load-model.ts';
import type { AdapterNaming } from '../lora/module-naming.ts';
import { HF_CLASSES, peftLoraConfig } from '../lora/peft-config.ts';
import { initLoraFactors } from '../lora/lora-init.ts';
import { writeAdapter } from '../lora/peft-adapter.ts';
import { RuntimePool } from '../parallel/runtime-pool.ts';
import { deriveSeed, seededUniform, shuffled } from '../random.ts';
import { ADAMW_DEFAULTS, AdamW } from './adamw.ts';
import { resumeTrainingCheckpoint, saveTrainingCheckpoint, type TrainingProgress } from './checkpoints.ts';
import { type Dataset, gatherRows, readDataset, splitValidation } from './dataset.ts';
import { computeGradients } from './gradient-step.ts';
import { learningRateAt } from './schedule.ts';
import { CLASSIFIER, classifierShape, freshHead, type HeadWeights, installHead } from './task-head.ts';
import {
  createTrainableState,
  DEFAULT_TARGETS,
  type FinetuneMode,
  selectTargets,
  type TrainableSpec,
  targetNamesFor,
} from './trainable.ts';

export interface FinetuneOptions {
  modelDir: string;
  /** A dataset file, or one already read. */
  dataset: string | Dataset;
  mode: FinetuneMode;
  outDir: string;
  rank?: number;
  alpha?: number;
  useRslora?: boolean;
  targetModules?: string[];
  steps?: number;
  learningRate?: number;
  batchSize?: number;
  weightDecay?: number;
  maxGradNorm?: number;
  warmupSteps?: number;
  seed?: number;
  validationFraction?: number;
  evalEvery?: number;
  checkpointEvery?: number;
  /** Where checkpoints go (default `<outDir>.checkpoints`); an interrupted run resumes from the latest. */
  checkpointDir?: string;
  /** Adapter key naming for ViT (transformers 5 by default). */
  naming?: AdapterNaming;
  /** Extra weight files for the model (a CLIP head). */
  extraWeights?: string[];
  /**
   * A head to train through, in place of the model's classifier (a stored task head). Without one, a dataset
   * whose class_names count differs from the classifier's classes gets a fresh seeded head of the right size.
   */
  head?: HeadWeights;
  /** What `head` is, for the written record (e.g. its artifact id). */
  headSource?: string;
  /**
   * Train the task head (modules_to_save in LoRA modes; the classifier in full mode). Default: frozen when a
   * `head` is given (the paper's frozen per-task heads) and for CLIP (zero-shot heads); trained otherwise.
   */
  trainHead?: boolean;
  signal?: AbortSignal;
  /** After every step; `valAccuracy` is the latest validation accuracy (null before the first evaluation). */
  onProgress?: (p: {
    step: number;
    steps: number;
    loss: number;
    learningRate: number;
    valAccuracy: number | null;
  }) => void;
  /** Stop after this many steps of this call (tests simulate a crash), leaving checkpoints behind. */
  stopAfter?: number;
  /**
   * Data parallelism: each step's batch is split over this many wasm runtimes, this thread's and `workers − 1`
   * worker threads (so `workers` is the number of cores used); gradients are averaged by shard size.
   */
  workers?: number;
  /** How long the worker threads stay warm for the next job (config.runtime.runtimeIdleMs); default 60 s. */
  runtimeIdleMs?: number;
}

export interface FinetuneResult {
  kind: 'adapter' | 'model';
  outDir: string;
  files: string[];
  mode: FinetuneMode;
  steps: number;
  lossCurve: Array<{ step: number; loss: number }>;
  validation: Array<{ step: number; accuracy: number; loss: number }>;
  resumedFromStep: number | null;
  samplesPerSecond: number;
  finished: boolean;
}

/** Fine-tunes a model folder on a dataset (LoRA, L-LoRA or full) and writes a PEFT adapter or a model folder. */
export async function finetune(options: FinetuneOptions): Promise<FinetuneResult> {
  const model = await loadModel(options.modelDir, { extraWeights: options.extraWeights });
  try {
    const dataset =
      typeof options.dataset === 'string' ? await readDataset(options.dataset) : options.dataset;
    const head = prepareTaskHead(model, dataset, options);
    return await runFinetune(model, dataset, options, head);
  } finally {
    model.dispose();
  }
}

/** The head a run trains through when it is not the model's own classifier, and the classifier it replaced. */
interface PreparedHead {
  installed: HeadWeights;
  original: HeadWeights;
  source: string;
  classNames: string[] | null;
}

/** Installs the given head, or a fresh one when the dataset's classes differ from the classifier's; else null. */
function prepareTaskHead(
  model: LoadedModel,
  dataset: Dataset,
  options: FinetuneOptions,
): PreparedHead | null {
  const shape = classifierShape(model);
  if (!shape) {
    if (options.head)
      throw new ModelInputError(`a ${model.config.model_type} model has no classifier to replace`);
    return null;
  }
  const classes = dataset.classNames?.length;
  let installed: HeadWeights;
  let source: string;
  if (options.head) {
    installed = options.head;
    source = options.headSource ?? 'given';
    const headClasses = installed.weight.shape[0];
    if (classes !== undefined && headClasses !== classes) {
      throw new ModelInputError(
        `the head has ${headClasses} classes but the dataset's class_names has ${classes}`,
      );
    }
  } else if (classes !== undefined && classes !== shape[0]) {
    installed = freshHead(classes, shape[1], options.seed ?? 0);
    source = 'fresh';
  } else {
    return null;
  }
  const maxLabel = dataset.labels.reduce((a, b) => Math.max(a, b), 0);
  if (maxLabel >= installed.weight.shape[0]) {
    throw new ModelInputError(
      `label ${maxLabel} is out of range for a head of ${installed.weight.shape[0]} classes`,
    );
  }
  const original: HeadWeights = {
    weight: hostOf(model, `${CLASSIFIER}.weight`),
    bias: model.params.has(`${CLASSIFIER}.bias`) ? hostOf(model, `${CLASSIFIER}.bias`) : null,
  };
  installHead(model, installed);
  return { installed, original, source, classNames: dataset.classNames };
}

/** A weight read back in HF layout, synchronously (the classifier is small). */
function hostOf(model: LoadedModel, name: string): HostTensor {
  const t = model.params.get(name);
  const hfShape = model.params.transposed.get(name);
  const data = (hfShape ? tf.tidy(() => tf.transpose(t)) : t).dataSync() as Float32Array;
  return { dtype: 'F32', shape: hfShape ?? t.shape, data: Float32Array.from(data) };
}

/** Every training setting with its default filled in. */
interface TrainingSettings {
  mode: FinetuneMode;
  seed: number;
  steps: number;
  batchSize: number;
  rank: number;
  alpha: number;
  useRslora: boolean;
  learningRate: number;
  warmupSteps: number;
  maxGradNorm: number;
  weightDecay: number;
  evalEvery: number;
  checkpointEvery: number;
  checkpointDir: string;
  naming: AdapterNaming;
  trainHead: boolean;
}

/** The run's defaults (those of PEFT and transformers' Trainer where they have one). */
function resolveSettings(model: LoadedModel, options: FinetuneOptions): TrainingSettings {
  const mode = options.mode;
  const steps = options.steps ?? 100;
  const rank = options.rank ?? 8;
  return {
    mode,
    seed: options.seed ?? 0,
    steps,
    batchSize: options.batchSize ?? 32,
    rank,
    alpha: options.alpha ?? 2 * rank,
    useRslora: options.useRslora ?? false,
    learningRate: options.learningRate ?? (mode === 'full' ? 1e-4 : 1e-3),
    warmupSteps: options.warmupSteps ?? Math.floor(steps / 10),
    maxGradNorm: options.maxGradNorm ?? 1.0,
    weightDecay: options.weightDecay ?? 0.01,
    evalEvery: options.evalEvery ?? Math.max(1, Math.floor(steps / 5)),
    checkpointEvery: options.checkpointEvery ?? 0,
    checkpointDir: options.checkpointDir ?? `${options.outDir.replace(/\/+$/, '')}.checkpoints`,
    naming: options.naming ?? 'transformers5',
    trainHead: options.trainHead ?? (options.head ? false : model.config.model_type !== 'clip_vision_model'),
  };
}

/** The worker threads of data-parallel training (`workers − 1` of them), each mirroring the trainable state. */
async function startRuntimePool(
  options: FinetuneOptions,
  state: TrainableSpec,
  head: HeadWeights | undefined,
): Promise<RuntimePool | null> {
  if ((options.workers ?? 1) <= 1) return null;
  return RuntimePool.start(
    options.workers! - 1,
    {
      type: 'init',
      backend: tf.getBackend() === 'tensorflow' ? undefined : tf.getBackend(),
      modelDir: options.modelDir,
      extraWeights: options.extraWeights,
      state,
      head,
    },
    options.runtimeIdleMs,
  );
}

/** Identifies a run, so a checkpoint resumes only the run that wrote it. */
function trainingRunKey(
  options: FinetuneOptions,
  settings: TrainingSettings,
  trainCount: number,
  targets: string[],
): string {
  const { mode, seed, steps, batchSize, rank, alpha, learningRate } = settings;
  return createHash('sha256')
    .update(
      JSON.stringify({
        model: options.modelDir,
        n: trainCount,
        mode,
        seed,
        steps,
        batchSize,
        rank,
        alpha,
        targets,
        learningRate,
      }),
    )
    .digest('hex')
    .slice(0, 16);
}

/** The example indices of a step's batch: shuffled once per epoch, depending only on (seed, step). */
function batchSampler(trainCount: number, batchSize: number, seed: number): (step: number) => number[] {
  const stepsPerEpoch = Math.max(1, Math.floor(trainCount / batchSize));
  const epochOrder = new Map<number, number[]>();
  return (step) => {
    // A resumed run sees exactly the batches it would have.
    const epoch = Math.floor(step / stepsPerEpoch);
    if (!epochOrder.has(epoch)) {
      epochOrder.clear();
      epochOrder.set(epoch, shuffled(trainCount, seededUniform(deriveSeed(seed, `epoch-${epoch}`))));
    }
    const order = epochOrder.get(epoch)!;
    const start = (step % stepsPerEpoch) * batchSize;
    return order.slice(start, Math.min(trainCount, start + batchSize));
  };
}

interface TrainingRun {
  model: LoadedModel;
  ctx: ForwardContext;
  variables: Map<string, tf.Variable>;
  optimizer: AdamW;
  pool: RuntimePool | null;
  train: Dataset;
  validation: Dataset | null;
  settings: TrainingSettings;
  progress: TrainingProgress;
}

/** One optimizer step on a batch (data-parallel when a pool is running); returns the batch loss. */
async function trainStep(run: TrainingRun, indices: number[], lr: number): Promise<number> {
  const { model, ctx, variables, optimizer, pool, train, settings } = run;
  const batch = new Map<string, HostTensor>();
  for (const [name, t] of train.inputs) batch.set(name, gatherRows(t, indices));
  const labels = Int32Array.from(indices, (i) => train.labels[i]);
  if (pool) {
    const averaged = await parallelGradients(pool, model, ctx, variables, batch, labels);
    optimizer.update(averaged.grads, lr, settings.maxGradNorm);
    return averaged.loss;
  }
  const { loss: value, grads } = computeGradients(model, ctx, variables, batch, labels);
  optimizer.update(grads, lr, settings.maxGradNorm);
  const loss = (await value.data())[0];
  value.dispose();
  return loss;
}

/**
 * Steps until the run's last step (or `stopAfter` steps of this call): validates every `evalEvery` steps and at
 * the end, reports progress, checkpoints every `checkpointEvery` steps. Returns the samples it trained on.
 */
async function trainLoop(run: TrainingRun, options: FinetuneOptions): Promise<number> {
  const { progress, settings, validation } = run;
  const { steps, learningRate, warmupSteps, evalEvery, checkpointEvery, checkpointDir } = settings;
  const sample = batchSampler(run.train.labels.length, settings.batchSize, settings.seed);
  let stepsThisCall = 0;
  let samples = 0;
  while (progress.step < steps) {
    if (options.signal?.aborted) throw new Error('fine-tuning cancelled');
    if (options.stopAfter !== undefined && stepsThisCall >= options.stopAfter) break;
    const indices = sample(progress.step);
    const lr = learningRateAt(progress.step, learningRate, warmupSteps, steps);
    const loss = await trainStep(run, indices, lr);
    progress.step += 1;
    stepsThisCall += 1;
    samples += indices.length;
    progress.lossCurve.push({ step: progress.step, loss });
    if (validation && (progress.step % evalEvery === 0 || progress.step === steps)) {
      const result = await evaluateModel(run.model, run.ctx, validation, 128);
      progress.validation.push({ step: progress.step, accuracy: result.accuracy, loss: result.loss });
    }
    const valAccuracy = progress.validation.at(-1)?.accuracy ?? null;
    options.onProgress?.({ step: progress.step, steps, loss, learningRate: lr, valAccuracy });
    if (checkpointEvery > 0 && progress.step % checkpointEvery === 0 && progress.step < steps) {
      await saveTrainingCheckpoint(checkpointDir, run.variables, run.optimizer, progress);
    }
  }
  return samples;
}

/** Defaults, trainable state and pool, resume, the training loop, then the adapter or model folder. */
async function runFinetune(
  model: LoadedModel,
  dataset: Dataset,
  options: FinetuneOptions,
  head: PreparedHead | null,
): Promise<FinetuneResult> {
  const settings = resolveSettings(model, options);
  const { mode, seed, steps, rank, alpha, useRslora, checkpointEvery, checkpointDir, trainHead } = settings;
  const modelType = model.config.model_type;

  const { train, validation } = splitValidation(dataset, options.validationFraction ?? 0.1, seed);
  const targets =
    mode === 'full' ? [] : selectTargets(model, options.targetModules ?? DEFAULT_TARGETS[modelType] ?? []);
  const scale = useRslora ? alpha / Math.sqrt(rank) : alpha / rank;
  // Full mode trains every weight but a frozen head: one installed for the run, or one the caller froze.
  const frozenHead = !trainHead && (head !== null || options.trainHead === false);
  const spec: TrainableSpec = { mode, targets, rank, scale, seed, trainHead, frozenHead };
  const state = createTrainableState(model, spec);
  const optimizer = new AdamW(state.variables, { ...ADAMW_DEFAULTS, weightDecay: settings.weightDecay });
  const ctx = new ForwardContext(model.params, state.lora, state.overrides);
  const pool = await startRuntimePool(options, spec, head?.installed);

  const runKey = trainingRunKey(options, settings, train.labels.length, targets);
  const resumed =
    checkpointEvery > 0
      ? await resumeTrainingCheckpoint(checkpointDir, state.variables, optimizer, runKey)
      : null;
  const resumedFromStep = resumed?.step ?? null;
  const progress: TrainingProgress = resumed ?? { step: 0, lossCurve: [], validation: [], runKey };
  const run: TrainingRun = {
    model,
    ctx,
    variables: state.variables,
    optimizer,
    pool,
    train,
    validation,
    settings,
    progress,
  };

  const started = performance.now();
  let samples: number;
  try {
    samples = await trainLoop(run, options);
  } catch (error) {
    optimizer.dispose();
    state.dispose();
    throw error;
  } finally {
    await pool?.close();
  }
  const seconds = (performance.now() - started) / 1000;
  const finished = progress.step >= steps;
  const training = {
    steps,
    batchSize: settings.batchSize,
    learningRate: settings.learningRate,
    warmupSteps: settings.warmupSteps,
    weightDecay: optimizer.options.weightDecay,
    maxGradNorm: settings.maxGradNorm,
    seed,
    // Data-parallel runtimes: each batch's split over them changes float sums in the last bits.
    runtimes: pool ? pool.size + 1 : 1,
    task: dataset.task,
    trainExamples: train.labels.length,
    validationExamples: validation?.labels.length ?? 0,
    lossCurve: progress.lossCurve,
    validation: progress.validation,
    // How the task read the body: its own classifier, or a stored or fresh head in its place.
    head: head
      ? { source: head.source, classes: head.installed.weight.shape[0], trained: trainHead }
      : { source: 'model', trained: trainHead },
  };
  let files: string[] = [];
  if (finished) {
    files =
      mode === 'full'
        ? await writeFullModel(model, options, training, head, trainHead)
        : await writeTrainedAdapter(model, state, options, {
            rank,
            alpha,
            useRslora,
            naming: settings.naming,
            seed,
            targets,
            training,
          });
    if (checkpointEvery > 0) await rm(checkpointDir, { recursive: true, force: true });
  }
  optimizer.dispose();
  state.dispose();
  return {
    kind: mode === 'full' ? 'model' : 'adapter',
    outDir: options.outDir,
    files,
    mode,
    steps: progress.step,
    lossCurve: progress.lossCurve,
    validation: progress.validation,
    resumedFromStep,
    samplesPerSecond: seconds > 0 ? samples / seconds : 0,
    finished,
  };
}

/**
 * Splits the batch over this thread's runtime and the pool's workers, and averages the gradients on the host,
 * weighted by shard size. The workers get their shards first, then this thread computes shard 0 meanwhile.
 */
async function parallelGradients(
  pool: RuntimePool,
  model: LoadedModel,
  ctx: ForwardContext,
  variables: Map<string, tf.Variable>,
  batch: Map<string, HostTensor>,
  labels: Int32Array,
): Promise<{ loss: number; grads: Map<string, Float32Array> }> {
  const values: Record<string, Float32Array> = {};
  for (const [key, variable] of variables) values[key] = (await variable.data()) as Float32Array;
  const parts = Math.min(pool.size + 1, labels.length);
  const shards = Array.from({ length: parts }, (_, i) => {
    const rows = Array.from({ length: labels.length }, (_, r) => r).filter((r) => r % parts === i);
    const inputs = new Map<string, HostTensor>();
    for (const [name, t] of batch) inputs.set(name, gatherRows(t, rows));
    return { inputs, labels: Int32Array.from(rows, (r) => labels[r]) };
  });
  const pending = pool.gradients(values, shards.slice(1)); // posted now; the workers run while this thread does
  let own: ReturnType<typeof computeGradients>;
  try {
    own = computeGradients(model, ctx, variables, shards[0].inputs, shards[0].labels);
  } catch (error) {
    await pending.catch(() => undefined); // settle the workers' replies before failing the step
    throw error;
  }
  const ownGrads: Record<string, Float32Array> = {};
  for (const [key, g] of own.grads) {
    ownGrads[key] = new Float32Array(g.dataSync() as Float32Array);
    g.dispose();
  }
  const ownLoss = own.loss.dataSync()[0];
  own.loss.dispose();
  const results = [{ loss: ownLoss, grads: ownGrads }, ...(await pending)];
  const grads = new Map<string, Float32Array>();
  let loss = 0;
  results.forEach((result, i) => {
    const weight = shards[i].labels.length / labels.length;
    loss += result.loss * weight;
    for (const [key, g] of Object.entries(result.grads)) {
      let sum = grads.get(key);
      if (!sum) {
        sum = new Float32Array(g.length);
        grads.set(key, sum);
      }
      for (let j = 0; j < g.length; j++) sum[j] += g[j] * weight;
    }
  });
  return { loss, grads };
}

async function writeTrainedAdapter(
  model: LoadedModel,
  state: ReturnType<typeof createTrainableState>,
  options: FinetuneOptions,
  info: {
    rank: number;
    alpha: number;
    useRslora: boolean;
    naming: AdapterNaming;
    seed: number;
    targets: string[];
    training: Record<string, unknown>;
  },
): Promise<string[]> {
  const host = async (t: tf.Tensor, shape: number[]): Promise<HostTensor> => {
    const back = tf.transpose(t);
    const data = (await back.data()) as Float32Array;
    back.dispose();
    return { dtype: 'F32', shape, data };
  };
  const factors = new Map<string, { a: HostTensor; b: HostTensor }>();
  const init = new Map<string, { a: HostTensor; b: HostTensor }>();
  for (const [module, lora] of state.lora) {
    const [inFeatures, r] = lora.aT.shape;
    const outFeatures = lora.bT.shape[1];
    factors.set(module, {
      a: await host(lora.aT, [r, inFeatures]),
      b: await host(lora.bT, [outFeatures, r]),
    });
    if (lora.linearized) {
      init.set(module, {
        a: await host(lora.a0T!, [r, inFeatures]),
        b: await host(lora.b0T!, [outFeatures, r]),
      });
    } else {
      // Plain LoRA records its expansion point too (A₀ from the seed, B₀ = 0): task vectors are φ − φ₀, as the
      // paper computes them, for merges in parameter space and for the analyses.
      const a0 = initLoraFactors(module, inFeatures, outFeatures, r, info.seed);
      init.set(module, {
        a: { dtype: 'F32', shape: [r, inFeatures], data: Float32Array.from(a0.a) },
        b: { dtype: 'F32', shape: [outFeatures, r], data: new Float32Array(outFeatures * r) },
      });
    }
  }
  const saved = new Map<string, HostTensor>();
  for (const [name, t] of state.overrides) {
    const hfShape = model.params.transposed.get(name);
    saved.set(
      name,
      hfShape
        ? await host(t, hfShape)
        : { dtype: 'F32', shape: t.shape, data: (await t.data()) as Float32Array },
    );
  }
  const modelType = model.config.model_type;
  const classes = HF_CLASSES[modelType];
  const config = peftLoraConfig({
    r: info.rank,
    loraAlpha: info.alpha,
    targetModules: targetNamesFor(model, info.targets, info.naming),
    modulesToSave: state.heads.length > 0 ? state.heads : null,
    useRslora: info.useRslora,
    baseModelClass: classes?.baseModelClass ?? null,
    parentLibrary: classes?.parentLibrary ?? null,
    baseModelNameOrPath:
      typeof model.config._name_or_path === 'string' && model.config._name_or_path
        ? model.config._name_or_path
        : null,
  });
  return writeAdapter(options.outDir, {
    config,
    modelType,
    naming: info.naming,
    factors,
    saved,
    init,
    extras: {
      format: 'lorafuse-adapter',
      mode: state.mode === 'llora' ? 'llora' : 'lora',
      seed: info.seed,
      naming: info.naming,
      lineage: {
        baseModel: options.modelDir,
        dataset: typeof options.dataset === 'string' ? options.dataset : null,
      },
      training: info.training,
    },
  });
}

/**
 * The model folder of a full fine-tune. Trained through a frozen head of its own, the body is written with the
 * base's classifier (the task's head lives apart, so models of tasks with different classes still merge);
 * with a trained replacement head, the classifier and config.json's labels are the task's.
 */
async function writeFullModel(
  model: LoadedModel,
  options: FinetuneOptions,
  training: Record<string, unknown>,
  head: PreparedHead | null,
  trainHead: boolean,
): Promise<string[]> {
  await mkdir(options.outDir, { recursive: true });
  const entries: Array<[string, HostTensor]> = [];
  const keepBaseHead = head !== null && !trainHead;
  for (const name of model.params.names().sort()) {
    if (keepBaseHead && name === `${CLASSIFIER}.weight`) entries.push([name, head.original.weight]);
    else if (keepBaseHead && name === `${CLASSIFIER}.bias` && head.original.bias)
      entries.push([name, head.original.bias]);
    else entries.push([name, await model.params.toHost(name)]);
  }
  await writeSafetensorsFile(path.join(options.outDir, 'model.safetensors'), entries, { format: 'pt' });
  if (head && trainHead) {
    const config = { ...model.config } as Record<string, unknown>;
    const labels =
      head.classNames ?? Array.from({ length: head.installed.weight.shape[0] }, (_, i) => `LABEL_${i}`);
    config.num_labels = labels.length;
    config.id2label = Object.fromEntries(labels.map((label, i) => [String(i), label]));
    config.label2id = Object.fromEntries(labels.map((label, i) => [label, i]));
    await writeFile(path.join(options.outDir, 'config.json'), `${JSON.stringify(config, null, 2)}\n`);
  } else {
    await copyFile(path.join(options.modelDir, 'config.json'), path.join(options.outDir, 'config.json'));
  }
  const extras = {
    format: 'lorafuse-model',
    mode: 'full',
    lineage: {
      baseModel: options.modelDir,
      dataset: typeof options.dataset === 'string' ? options.dataset : null,
    },
    training,
  };
  await writeFile(path.join(options.outDir, 'lorafuse.json'), `${JSON.stringify(extras, null, 2)}\n`);
  return ['config.json', 'model.safetensors', 'lorafuse.json'];
}
