// `lorafuse study` arguments → the plan of one study run: the preset with the user's overrides, the tasks and
// where their data comes from, the modes and merge methods, the seed. Everything is settled before any job.
import { existsSync, readdirSync, statSync } from 'node:fs';
import path from 'node:path';
import { STUDY_TASKS, type StudySplitSizes } from '../../eval/datasets/mnist-suite.ts';
import { type CommandSpec, type ParsedCommand, UsageError } from '../args.ts';
import {
  type FinetuneModeName,
  METHODS,
  type MergeMethodName,
  MODES,
  PRESETS,
  type StudyPreset,
  type TrainingSettings,
} from './presets.ts';
import { HEAD_KINDS, type HeadKind } from './heads.ts';

export const STUDY_SPEC: CommandSpec = {
  command: 'study',
  summary: `Reproduces the L-LoRA paper's comparison through a running service's API: uploads a backbone and
each task's datasets, fine-tunes every task in full, lora and llora modes, merges each mode's set with simple
averaging, task arithmetic, TIES and LoraHub (λ and density chosen on validation), evaluates on test with
per-task heads, analyses the task vectors, and prints the paper-style table. Without URL (or LORAFUSE_URL) it
starts the embedded stack as \`lorafuse dev\` does.`,
  positionals: [
    {
      name: 'URL',
      description: 'a running lorafuse service (default: LORAFUSE_URL, else embedded)',
      optional: true,
    },
  ],
  options: {
    quick: { type: 'boolean', description: PRESETS.quick.description, default: 'off' },
    preset: {
      type: 'string',
      value: 'NAME',
      choices: ['quick', 'default', 'paper'],
      description: 'quick | default | paper (paper needs --model and --data)',
      default: 'default',
    },
    out: {
      type: 'string',
      value: 'DIR',
      path: 'new-path',
      description: 'where results.json and report.html go',
      default: 'study-results',
    },
    seed: {
      type: 'string',
      value: 'N',
      number: { integer: true, min: 0, max: 2 ** 31 - 1 },
      description: 'one seed for everything: A₀ (shared by every task), heads, data order, LoraHub',
      default: '0',
    },
    tasks: { type: 'string', value: 'a,b', description: "tasks to run (default: the preset's)" },
    heads: {
      type: 'string',
      value: 'KIND',
      choices: [...HEAD_KINDS],
      description:
        "each task's frozen head where --data gives none: probe (a linear probe on the pre-trained body's features of the task's training split) or random (seeded rows)",
      default: 'probe',
    },
    modes: {
      type: 'string',
      value: 'm,n',
      description: 'fine-tuning modes: full,lora,llora',
      default: 'full,lora,llora',
    },
    methods: {
      type: 'string',
      value: 'm,n',
      description: 'merge methods: average,task_arithmetic,ties,lorahub',
      default: 'average,task_arithmetic,ties,lorahub',
    },
    steps: {
      type: 'string',
      value: 'N',
      number: { integer: true, min: 1, max: 1_000_000 },
      description: "training steps (default: the preset's)",
    },
    'learning-rate': {
      type: 'string',
      value: 'MODE=R,...',
      description: "learning rates per fine-tuning mode, e.g. lora=3e-3,llora=6e-3 (default: the preset's)",
    },
    'train-examples': {
      type: 'string',
      value: 'N',
      number: { integer: true, min: 8, max: 100_000 },
      description: 'training examples per task',
    },
    'validation-examples': {
      type: 'string',
      value: 'N',
      number: { integer: true, min: 4, max: 100_000 },
      description: 'validation examples per task',
    },
    'test-examples': {
      type: 'string',
      value: 'N',
      number: { integer: true, min: 4, max: 100_000 },
      description: 'test examples per task',
    },
    'grid-points': {
      type: 'string',
      value: 'N',
      number: { integer: true, min: 2, max: 41 },
      description: 'λ values per axis of the disentanglement grid (linspace(−2, 2, N))',
    },
    model: {
      type: 'string',
      value: 'DIR',
      path: 'model-dir',
      description:
        'the backbone (an HF model folder; default: the MNIST ViT fixture; --preset paper: required)',
    },
    data: {
      type: 'string',
      value: 'DIR',
      path: 'dir',
      description:
        'your tasks: DIR/<task>/{train,validation,test}.safetensors (lorafuse datasets) and optional head.safetensors',
    },
    timeout: {
      type: 'string',
      value: 'MIN',
      number: { min: 1, max: 10_000 },
      description: 'give up on a job after MIN minutes',
      default: '120',
    },
  },
  notes: `Environment: LORAFUSE_URL, LORAFUSE_API_KEY (a remote service). The embedded stack uses a fresh data
directory under the output folder and is stopped at the end.`,
};

export interface StudyTaskSource {
  name: string;
  classNames: string[];
  /** The MNIST suite builds it; a user's folder holds its files. */
  files?: { train: string; validation: string; test: string; head?: string };
}

export interface StudyPlan {
  preset: StudyPreset;
  url: string | null;
  apiKey?: string;
  outDir: string;
  seed: number;
  modelDir: string | null;
  tasks: StudyTaskSource[];
  heads: HeadKind;
  modes: FinetuneModeName[];
  methods: MergeMethodName[];
  sizes: StudySplitSizes;
  training: TrainingSettings;
  disentanglement: { grid: number[]; examples: number };
  jobTimeoutMs: number;
}

function list<T extends string>(value: string, known: readonly T[], what: string): T[] {
  const items = value
    .split(',')
    .map((v) => v.trim())
    .filter(Boolean);
  for (const item of items) {
    if (!known.includes(item as T))
      throw new UsageError(`unknown ${what} "${item}"; known: ${known.join(', ')}`);
  }
  if (items.length === 0) throw new UsageError(`no ${what} given`);
  return [...new Set(items)] as T[];
}

/** `lora=3e-3,llora=6e-3` over the preset's rates: every mode named once, every rate a positive number. */
function learningRates(
  value: string,
  preset: Record<FinetuneModeName, number>,
): Record<FinetuneModeName, number> {
  const rates = { ...preset };
  for (const item of value
    .split(',')
    .map((v) => v.trim())
    .filter(Boolean)) {
    const [mode, rate, ...rest] = item.split('=');
    if (!MODES.includes(mode as FinetuneModeName) || rest.length > 0)
      throw new UsageError(
        `--learning-rate: "${item}" is not MODE=RATE with MODE one of ${MODES.join(', ')}`,
      );
    const parsed = Number(rate);
    if (!Number.isFinite(parsed) || parsed <= 0 || parsed > 1)
      throw new UsageError(`--learning-rate: ${mode}'s rate "${rate}" is not a number in (0, 1]`);
    rates[mode as FinetuneModeName] = parsed;
  }
  return rates;
}

/** Tasks of a user's data folder: one subfolder per task with the three splits. */
function folderTasks(dataDir: string, names: string[]): StudyTaskSource[] {
  return names.map((name) => {
    const dir = path.join(dataDir, name);
    const files = {
      train: path.join(dir, 'train.safetensors'),
      validation: path.join(dir, 'validation.safetensors'),
      test: path.join(dir, 'test.safetensors'),
    };
    for (const file of Object.values(files)) {
      if (!existsSync(file))
        throw new UsageError(`--data: ${file} is missing (each task needs train, validation, test)`);
    }
    const head = path.join(dir, 'head.safetensors');
    return { name, classNames: [], files: existsSync(head) ? { ...files, head } : files };
  });
}

export function buildPlan(parsed: ParsedCommand, env: NodeJS.ProcessEnv): StudyPlan {
  const v = parsed.values;
  const presetName = v.quick ? 'quick' : ((v.preset as StudyPreset['name'] | undefined) ?? 'default');
  if (v.quick && v.preset && v.preset !== 'quick')
    throw new UsageError('--quick and --preset are alternatives');
  const preset = PRESETS[presetName];
  const dataDir = v.data as string | undefined;
  const modelDir = (v.model as string | undefined) ?? null;
  if (presetName === 'paper' && (!dataDir || !modelDir)) {
    throw new UsageError(
      `--preset paper runs ${preset.description}. It needs what lorafuse cannot ship: --model DIR (a clip_vision_model folder, e.g. openai/clip-vit-base-patch16's vision tower in HF format) and --data DIR (DIR/<task>/{train,validation,test}.safetensors for your 7 tasks, pixel_values [N,3,224,224] as CLIPImageProcessor makes them, and each task's zero-shot head as head.safetensors). Run it on a GPU worker; --quick shows the same comparison on MNIST in minutes.`,
    );
  }
  let tasks: StudyTaskSource[];
  if (dataDir) {
    const available = readdirSync(dataDir)
      .filter((name: string) => statSync(path.join(dataDir, name)).isDirectory())
      .sort();
    const names = v.tasks ? list(v.tasks as string, available, 'task') : available;
    if (names.length < 2)
      throw new UsageError(`--data ${dataDir} holds ${names.length} task folder(s); a merge needs 2`);
    tasks = folderTasks(dataDir, names);
  } else {
    const known = STUDY_TASKS.map((t) => t.name);
    const names = v.tasks
      ? list(v.tasks as string, known, 'task')
      : preset.tasks === 'all'
        ? known
        : [...preset.tasks];
    if (names.length < 2) throw new UsageError('a study merges at least 2 tasks');
    tasks = names.map((name) => ({ name, classNames: STUDY_TASKS.find((t) => t.name === name)!.classNames }));
  }
  const number = (key: string) => (v[key] === undefined ? undefined : Number(v[key]));
  const sizes = {
    train: number('train-examples') ?? preset.sizes.train,
    validation: number('validation-examples') ?? preset.sizes.validation,
    test: number('test-examples') ?? preset.sizes.test,
  };
  const points = number('grid-points');
  const url = (parsed.positionals[0] ?? env.LORAFUSE_URL ?? '').trim() || null;
  return {
    preset,
    url,
    apiKey: env.LORAFUSE_API_KEY || undefined,
    outDir: path.resolve((v.out as string | undefined) ?? 'study-results'),
    seed: number('seed') ?? 0,
    modelDir: modelDir ? path.resolve(modelDir) : null,
    tasks,
    heads: ((v.heads as string | undefined) ?? 'probe') as HeadKind,
    modes: list((v.modes as string | undefined) ?? MODES.join(','), MODES, 'mode'),
    methods: list((v.methods as string | undefined) ?? METHODS.join(','), METHODS, 'method'),
    sizes,
    training: {
      ...preset.training,
      steps: number('steps') ?? preset.training.steps,
      learningRate: v['learning-rate']
        ? learningRates(v['learning-rate'] as string, preset.training.learningRate)
        : preset.training.learningRate,
    },
    disentanglement: {
      grid: points
        ? Array.from({ length: points }, (_, i) => Number((-2 + (4 * i) / (points - 1)).toFixed(6)))
        : preset.disentanglement.grid,
      examples: Math.min(preset.disentanglement.examples, sizes.test || preset.disentanglement.examples),
    },
    jobTimeoutMs: (number('timeout') ?? 120) * 60_000,
  };
}
