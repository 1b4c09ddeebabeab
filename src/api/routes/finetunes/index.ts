// POST /v1/finetunes: fine-tune a stored model on a stored dataset (LoRA, L-LoRA or full), queued
// on the finetune queue after the ids and settings are checked.
import { randomInt } from 'node:crypto';
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { Static } from 'typebox';
import { type FinetuneHyperparameters, type FinetuneJobPayload, hashBody } from '../../../queue/index.ts';
import { ApiProblem } from '../../errors.ts';
import { problemResponses } from '../../schemas.ts';
import { requireArtifacts, requireRunnable } from '../jobs/job-inputs.ts';
import {
  IdempotencyHeaders,
  idempotencyKeyOf,
  JobCreatedResponses,
  sendJob,
  submitJob,
  callbackOf,
} from '../jobs/submission.ts';
import { FinetuneBody } from './schemas.ts';

/** Checkpoints unless the request says otherwise, so that a restarted worker resumes. */
export const DEFAULT_CHECKPOINT_EVERY = 50;
/** The runtime's default when `steps` is absent (src/model/train/finetune.ts). */
const RUNTIME_DEFAULT_STEPS = 100;

const HYPERPARAMETERS = [
  'rank',
  'alpha',
  'target_modules',
  'steps',
  'learning_rate',
  'batch_size',
  'weight_decay',
  'max_grad_norm',
  'warmup_steps',
  'validation_fraction',
  'eval_every',
  'checkpoint_every',
  'head',
  'train_head',
] as const satisfies ReadonlyArray<keyof FinetuneHyperparameters>;

function invalid(detail: string, field: string): ApiProblem {
  return new ApiProblem('invalid-finetune', detail, { field });
}

const finetuneRoutes: FastifyPluginAsyncTypebox = async (app) => {
  app.post(
    '/finetunes',
    {
      schema: {
        tags: ['finetunes'],
        summary: 'Queue a fine-tune',
        description:
          'Trains a LoRA or L-LoRA adapter (or a full model) on a stored dataset. Unknown ids, a model without config.json, a test split, or settings that contradict each other are a 422. The job reports {phase, step, totalSteps, loss, valAccuracy}; its result names the new artifact and carries the loss curve and validation accuracy. Checkpoints let a restarted job resume. Idempotency-Key as for merges.',
        body: FinetuneBody,
        headers: IdempotencyHeaders,
        response: { ...JobCreatedResponses, ...problemResponses(400, 409, 415, 422) },
      },
    },
    async (request, reply) => {
      const body = request.body as Static<typeof FinetuneBody>;
      const callback = await callbackOf(app, body.callback_url, request.principal.project);
      const idempotencyKey = idempotencyKeyOf(request);
      const [model, dataset] = await requireArtifacts(request.store, [
        { field: 'model', id: body.model, kind: 'model' },
        { field: 'dataset', id: body.dataset, kind: 'dataset' },
      ]);
      requireRunnable(model, 'model');
      if (body.head !== undefined) {
        const [head] = await requireArtifacts(request.store, [
          { field: 'head', id: body.head, kind: 'head' },
        ]);
        const classes = dataset.classes?.length;
        if (classes !== undefined && head.head && head.head.classes !== classes) {
          throw invalid(
            `${head.id} has ${head.head.classes} classes but ${dataset.id} has ${classes} (class_names)`,
            'head',
          );
        }
      }
      if (dataset.split === 'test') {
        throw invalid(`${dataset.id} is a test split: fine-tune on train (or validation) data`, 'dataset');
      }
      if (body.mode === 'full') {
        for (const field of ['rank', 'alpha', 'target_modules'] as const) {
          if (body[field] !== undefined) throw invalid(`${field} applies to lora and llora only`, field);
        }
      }
      const steps = body.steps ?? RUNTIME_DEFAULT_STEPS;
      if (body.warmup_steps !== undefined && body.warmup_steps > steps) {
        throw invalid(`warmup_steps (${body.warmup_steps}) is more than steps (${steps})`, 'warmup_steps');
      }
      const examples = dataset.examples ?? 0;
      const held = Math.floor(examples * (body.validation_fraction ?? 0.1));
      if (examples - held < 1) {
        throw invalid(
          `validation_fraction leaves none of the ${examples} examples to train on`,
          'validation_fraction',
        );
      }
      const hyperparameters: FinetuneHyperparameters = {};
      for (const key of HYPERPARAMETERS) {
        if (body[key] !== undefined) Object.assign(hyperparameters, { [key]: body[key] });
      }
      hyperparameters.checkpoint_every ??= DEFAULT_CHECKPOINT_EVERY;
      // The seed is part of the recipe so that the run can be repeated exactly.
      const seed = body.seed ?? randomInt(0, 2 ** 31 - 1);
      const { callback_url: _callbackUrl, ...settings } = body;
      const payload: FinetuneJobPayload = {
        ...callback,
        recipe: { ...settings, seed },
        model: model.id,
        dataset: dataset.id,
        mode: body.mode,
        hyperparameters,
        seed,
        inputs: body.head ? [model.id, dataset.id, body.head] : [model.id, dataset.id],
      };
      const { job, created } = await submitJob(request, 'finetune', payload, payload.inputs, {
        idempotencyKey,
        bodyHash: hashBody({ type: 'finetune', body }),
      });
      return sendJob(reply, job, created);
    },
  );
};

export default finetuneRoutes;
