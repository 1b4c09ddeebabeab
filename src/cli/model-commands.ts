// `lorafuse predict | finetune | evaluate`: the declarations of their options, and the checks of
// arguments and files that run before model-runs.ts (and with it tfjs and its backend) is loaded.
import { ConfigError } from '../config.ts';
import { type CommandOutput, type CommandSpec, prepareCommand, processOutput } from './args.ts';

export type ModelCommand = 'predict' | 'finetune' | 'evaluate';

const MODEL = {
  type: 'string',
  value: 'DIR',
  required: true,
  path: 'model-dir',
  description: 'the model: a Hugging Face folder (config.json + model.safetensors or shards)',
} as const;
const ADAPTER = {
  type: 'string',
  value: 'DIR',
  path: 'adapter-dir',
  description: 'a PEFT LoRA adapter folder to apply (adapter_config.json + adapter_model.safetensors)',
  default: 'none',
} as const;
const HEAD = {
  type: 'string',
  value: 'FILE',
  path: 'file',
  description: 'extra weights (a safetensors file), e.g. the linear head of a CLIP vision tower',
  default: 'none',
} as const;
const integer = (min: number, max?: number) => ({ integer: true, min, max });

export const MODEL_COMMAND_SPECS: Record<ModelCommand, CommandSpec> = {
  predict: {
    command: 'predict',
    summary:
      'Runs a model (with an adapter) on inputs and writes the logits (and image_embeds for clip_vision_model) as safetensors.',
    options: {
      model: MODEL,
      adapter: ADAPTER,
      head: HEAD,
      inputs: {
        type: 'string',
        value: 'FILE',
        required: true,
        path: 'file',
        description:
          'safetensors holding the inputs under their Hugging Face names (pixel_values or input_ids)',
      },
      out: {
        type: 'string',
        value: 'FILE',
        required: true,
        path: 'new-file',
        description: 'where the outputs are written',
      },
      'batch-size': {
        type: 'string',
        value: 'N',
        number: integer(1),
        description: 'examples per forward pass',
        default: '64',
      },
    },
  },
  finetune: {
    command: 'finetune',
    summary:
      'Fine-tunes a model on a dataset with LoRA, L-LoRA (LoRA linearized around its initialisation) or all weights.\nWrites a PEFT adapter folder (lora, llora) or a model folder (full); resumes from its checkpoints after a crash.',
    options: {
      model: MODEL,
      dataset: {
        type: 'string',
        value: 'FILE',
        required: true,
        path: 'file',
        description: 'the training set: safetensors with the inputs and labels (split train)',
      },
      mode: {
        type: 'string',
        value: 'MODE',
        required: true,
        choices: ['lora', 'llora', 'full'],
        description: 'what is trained',
      },
      out: {
        type: 'string',
        value: 'DIR',
        required: true,
        path: 'new-path',
        description: 'the output folder (adapter or model)',
      },
      rank: {
        type: 'string',
        value: 'R',
        number: integer(1),
        description: 'LoRA rank r (rows of A, columns of B)',
        default: '8',
      },
      alpha: {
        type: 'string',
        value: 'A',
        number: { min: 0 },
        description: 'LoRA alpha: the update is scaled by alpha/r',
        default: '2 × rank',
      },
      rslora: {
        type: 'boolean',
        description: 'scale by alpha/√r instead of alpha/r (rsLoRA)',
        default: 'off',
      },
      'target-modules': {
        type: 'string',
        value: 'a,b',
        description: 'modules that get LoRA layers, by name suffix',
        default: 'q_proj,v_proj (vit, clip), query,value (bert), every layer (mlp)',
      },
      steps: {
        type: 'string',
        value: 'N',
        number: integer(1),
        description: 'optimizer steps',
        default: '100',
      },
      lr: {
        type: 'string',
        value: 'X',
        number: { min: 0 },
        description: 'peak learning rate (AdamW, warm-up then cosine decay)',
        default: '1e-3 (lora, llora), 1e-4 (full)',
      },
      'batch-size': {
        type: 'string',
        value: 'N',
        number: integer(1),
        description: 'examples per step',
        default: '32',
      },
      seed: {
        type: 'string',
        value: 'S',
        number: integer(0),
        description: 'seed of the LoRA initialisation (A₀), the validation split and the batches',
        default: '0',
      },
      'weight-decay': {
        type: 'string',
        value: 'X',
        number: { min: 0 },
        description: 'AdamW weight decay',
        default: '0.01',
      },
      'max-grad-norm': {
        type: 'string',
        value: 'X',
        number: { min: 0 },
        description: 'clip the global gradient norm to this',
        default: '1.0',
      },
      'warmup-steps': {
        type: 'string',
        value: 'N',
        number: integer(0),
        description: 'linear warm-up steps',
        default: 'steps / 10',
      },
      'validation-fraction': {
        type: 'string',
        value: 'X',
        number: { min: 0, max: 0.9 },
        description: 'share of the dataset held out for validation',
        default: '0.1',
      },
      'eval-every': {
        type: 'string',
        value: 'N',
        number: integer(1),
        description: 'evaluate on the validation split every N steps',
        default: 'steps / 5',
      },
      'checkpoint-every': {
        type: 'string',
        value: 'N',
        number: integer(0),
        description: 'write a resumable checkpoint every N steps (0: never) into OUT.checkpoints',
        default: '0',
      },
      naming: {
        type: 'string',
        value: 'NAMING',
        choices: ['t5', 't4'],
        description: 'ViT adapter key naming: transformers 5.x or 4.x',
        default: 't5',
      },
      head: HEAD,
      runtimes: {
        type: 'string',
        value: 'N',
        number: integer(1, 16),
        description: 'wasm: train data-parallel over N runtimes (this thread and N−1 worker threads)',
        default: '1',
      },
    },
    notes:
      'Progress goes to stderr; the result (files, steps, final loss, validation accuracy) to stdout as JSON.',
  },
  evaluate: {
    command: 'evaluate',
    summary: 'Accuracy and loss of a model (with an adapter) on a dataset, printed as JSON.',
    options: {
      model: MODEL,
      adapter: ADAPTER,
      head: HEAD,
      dataset: {
        type: 'string',
        value: 'FILE',
        required: true,
        path: 'file',
        description: 'safetensors with the inputs and labels',
      },
      'batch-size': {
        type: 'string',
        value: 'N',
        number: integer(1),
        description: 'examples per forward pass',
        default: '64',
      },
    },
  },
};

/** Runs `lorafuse predict|finetune|evaluate` with the arguments after the command name; returns the exit code. */
export async function runModelCommand(
  name: ModelCommand,
  argv: string[],
  io: CommandOutput = processOutput,
): Promise<number> {
  const parsed = prepareCommand(MODEL_COMMAND_SPECS[name], argv, io);
  if (typeof parsed === 'number') return parsed;
  try {
    const { runCheckedModelCommand } = await import('./model-runs.ts');
    await runCheckedModelCommand(name, parsed.values, io);
    return 0;
  } catch (error) {
    if (error instanceof ConfigError) throw error; // main prints it as a configuration error (exit 2)
    io.stderr(`lorafuse ${name}: ${(error as Error).message}\n`);
    return 1;
  }
}
