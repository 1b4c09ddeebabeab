// The study's presets: how many tasks, how much data and training, and the search grids. `quick` fits a laptop
// in minutes, `default` is the full comparison on the MNIST suite, `paper` describes the paper's CLIP ViT-B/16
// setup for users who bring those weights and datasets.
import { QUICK_STUDY_TASKS, type StudySplitSizes } from '../../eval/datasets/mnist-suite.ts';

export type FinetuneModeName = 'full' | 'lora' | 'llora';
export const MODES: readonly FinetuneModeName[] = ['full', 'lora', 'llora'];

export type MergeMethodName = 'average' | 'task_arithmetic' | 'ties' | 'lorahub';
export const METHODS: readonly MergeMethodName[] = ['average', 'task_arithmetic', 'ties', 'lorahub'];

export interface TrainingSettings {
  steps: number;
  batchSize: number;
  rank: number;
  alpha: number;
  targetModules?: string[];
  /** Per mode: full fine-tuning moves every weight, so it takes a smaller step. */
  learningRate: Record<FinetuneModeName, number>;
}

export interface StudyPreset {
  name: 'quick' | 'default' | 'paper';
  description: string;
  /** Task names from the suite, or 'all'. */
  tasks: readonly string[] | 'all';
  sizes: StudySplitSizes;
  training: TrainingSettings;
  /** The grids the service's search selects from on validation. */
  search: { task_arithmetic: { lambda: number[] }; ties: { lambda: number[]; density: number[] } };
  lorahub: { max_evaluations: number; examples: number };
  disentanglement: { grid: number[]; examples: number };
}

const linspace = (from: number, to: number, n: number) =>
  Array.from({ length: n }, (_, i) => Number((from + ((to - from) * i) / (n - 1)).toFixed(6)));

export const PRESETS: Record<StudyPreset['name'], StudyPreset> = {
  quick: {
    name: 'quick',
    description: '4 tasks, 512 training examples each, 60 steps: under 2 minutes on 2 idle cores',
    tasks: QUICK_STUDY_TASKS,
    sizes: { train: 512, validation: 128, test: 256 },
    training: {
      steps: 60,
      batchSize: 32,
      rank: 8,
      alpha: 16,
      learningRate: { full: 1e-3, lora: 3e-3, llora: 3e-3 },
    },
    search: {
      task_arithmetic: { lambda: [0.3, 0.5, 0.7, 1] },
      ties: { lambda: [0.5, 1], density: [0.2, 0.5] },
    },
    lorahub: { max_evaluations: 16, examples: 32 },
    disentanglement: { grid: linspace(-2, 2, 9), examples: 128 },
  },
  default: {
    name: 'default',
    description:
      'every task of the suite, 2,000 training examples each, 300 steps: about 7 minutes on 2 idle cores',
    tasks: 'all',
    sizes: { train: 2000, validation: 300, test: 1000 },
    training: {
      steps: 300,
      batchSize: 32,
      rank: 8,
      alpha: 16,
      learningRate: { full: 5e-4, lora: 3e-3, llora: 3e-3 },
    },
    search: {
      task_arithmetic: { lambda: linspace(0.1, 1, 10) },
      ties: { lambda: [0.4, 0.7, 1], density: [0.1, 0.2, 0.5] },
    },
    lorahub: { max_evaluations: 40, examples: 64 },
    disentanglement: { grid: linspace(-2, 2, 21), examples: 256 },
  },
  paper: {
    name: 'paper',
    description:
      "the paper's setup: CLIP ViT-B/16 vision tower, 7 tasks (bring your own), r = 16, α = 32, q/v targets, 2,000 steps",
    tasks: 'all',
    sizes: { train: 0, validation: 0, test: 0 }, // whatever the user's dataset files hold
    training: {
      steps: 2000,
      batchSize: 64,
      rank: 16,
      alpha: 32,
      targetModules: ['q_proj', 'v_proj'],
      learningRate: { full: 1e-5, lora: 1e-4, llora: 1e-4 },
    },
    search: {
      task_arithmetic: { lambda: linspace(0.1, 1, 10) },
      ties: { lambda: linspace(0.1, 1, 10), density: [0.2] },
    },
    lorahub: { max_evaluations: 40, examples: 5 },
    disentanglement: { grid: linspace(-2, 2, 21), examples: 512 },
  },
};
