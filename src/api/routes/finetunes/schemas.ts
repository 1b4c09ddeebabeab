// The fine-tune request: artifact ids, the mode and the training settings, with their ranges.
import { Type } from 'typebox';
import { CallbackUrlProperty } from '../jobs/submission.ts';

const ArtifactId = Type.String({ minLength: 1, maxLength: 100 });

export const FinetuneBody = Type.Object(
  {
    model: ArtifactId,
    dataset: ArtifactId,
    callback_url: CallbackUrlProperty,
    mode: Type.Union([Type.Literal('lora'), Type.Literal('llora'), Type.Literal('full')], {
      description: 'lora, llora (partially linearized LoRA) or full fine-tuning.',
    }),
    rank: Type.Optional(Type.Integer({ minimum: 1, maximum: 1024, description: 'LoRA rank (default 8).' })),
    alpha: Type.Optional(
      Type.Number({ exclusiveMinimum: 0, maximum: 1e6, description: 'lora_alpha (default 2·rank).' }),
    ),
    target_modules: Type.Optional(
      Type.Array(Type.String({ minLength: 1, maxLength: 200 }), {
        minItems: 1,
        maxItems: 256,
        description: "Module names LoRA adapts (default: the architecture's attention/linear layers).",
      }),
    ),
    steps: Type.Optional(Type.Integer({ minimum: 1, maximum: 1_000_000, description: 'Default 100.' })),
    learning_rate: Type.Optional(
      Type.Number({ exclusiveMinimum: 0, maximum: 10, description: 'Default 1e-3 (LoRA), 1e-4 (full).' }),
    ),
    batch_size: Type.Optional(Type.Integer({ minimum: 1, maximum: 4096, description: 'Default 32.' })),
    weight_decay: Type.Optional(
      Type.Number({ minimum: 0, maximum: 10, description: 'AdamW, default 0.01.' }),
    ),
    max_grad_norm: Type.Optional(
      Type.Number({ exclusiveMinimum: 0, maximum: 1e6, description: 'Global-norm clipping, default 1.' }),
    ),
    warmup_steps: Type.Optional(
      Type.Integer({ minimum: 0, maximum: 1_000_000, description: 'Default steps/10; at most steps.' }),
    ),
    seed: Type.Optional(
      Type.Integer({ minimum: 0, maximum: 2 ** 31 - 1, description: 'Chosen and recorded when absent.' }),
    ),
    validation_fraction: Type.Optional(
      Type.Number({ minimum: 0, maximum: 0.5, description: 'Held out of training, default 0.1.' }),
    ),
    eval_every: Type.Optional(
      Type.Integer({ minimum: 1, maximum: 1_000_000, description: 'Validation every N steps.' }),
    ),
    head: Type.Optional(
      Type.String({
        minLength: 1,
        maxLength: 100,
        description:
          "A stored head (hed_…, POST /v1/heads) put in place of the model's classifier for this task; frozen unless train_head. Without it, a dataset whose class_names count differs from the classifier's gets a fresh seeded head (normal(0, 0.02) weights, zero bias), trained.",
      }),
    ),
    train_head: Type.Optional(
      Type.Boolean({
        description:
          "Train the head too (LoRA modes: saved in modules_to_save; full: the written classifier). Default false with `head` (the paper's frozen per-task heads: a full model is then written with the base's classifier, so models of tasks with different classes merge), true otherwise (false for clip_vision_model).",
      }),
    ),
    checkpoint_every: Type.Optional(
      Type.Integer({
        minimum: 0,
        maximum: 1_000_000,
        description: 'Checkpoint every N steps so that a restarted job resumes (default 50; 0: never).',
      }),
    ),
  },
  { additionalProperties: false },
);
