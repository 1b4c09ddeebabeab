// One fine-tune job from start to finish: link the stored model into a folder the runtime reads,
// train with checkpoints in the job's own folder, ingest the result as an adapter (lora, llora) or
// a model (full). The job folder outlives a killed or failed attempt so that the next attempt
// resumes from the latest checkpoint; it is removed once the job is over, however it ends.
import { readFile, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { UnrecoverableError } from 'bullmq';
import { backendOptions, initBackend } from '../../src/model/backend.ts';
import { readStoredHead } from '../../src/eval/heads.ts';
import { finetune } from '../../src/model/train/finetune.ts';
import {
  CANCELLED_REASON,
  type FinetuneJobPayload,
  type FinetuneJobResult,
  type FinetuneProgress,
} from '../../src/queue/index.ts';
import {
  DATASET_FILE,
  HEAD_FILE,
  LORAFUSE_EXTRAS,
  LORAFUSE_VERSION,
  MODEL_CONFIG,
  requireArtifact,
} from '../../src/store/index.ts';
import { watchCancel } from '../cancel-watch.ts';
import { failJob, InvalidJobInputError } from '../job-failure.ts';
import { isStalePublication, jobPublications } from '../job-publication.ts';
import type { JobRunDependencies } from '../processor-dependencies.ts';
import { loadTrainingRuntimes } from '../worker-settings.ts';

export interface FinetuneJobContext {
  id: string;
  data: FinetuneJobPayload;
  /** Failed attempts before this one, and how many the job has in all. */
  attemptsMade: number;
  maxAttempts: number;
  updateProgress(progress: FinetuneProgress): Promise<void>;
}

export type FinetuneJobDependencies = JobRunDependencies;

/** The job's folder, kept across attempts: model links, checkpoints, the output being written. */
export function finetuneJobDir(dataDir: string, jobId: string): string {
  return path.join(dataDir, 'work', 'finetune', jobId);
}

/** lorafuse.json names server paths for the base and dataset: name the artifacts instead. */
async function recordIdsInExtras(outDir: string, model: string, dataset: string): Promise<void> {
  const file = path.join(outDir, LORAFUSE_EXTRAS);
  const extras = JSON.parse(await readFile(file, 'utf8')) as Record<string, unknown>;
  extras.lineage = { ...(extras.lineage as Record<string, unknown>), baseModel: model, dataset };
  await writeFile(file, `${JSON.stringify(extras, null, 2)}\n`);
}

export async function runFinetuneJob(
  job: FinetuneJobContext,
  deps: FinetuneJobDependencies,
): Promise<FinetuneJobResult> {
  const { data } = job;
  const hp = data.hyperparameters;
  const jobDir = finetuneJobDir(deps.dataDir, job.id);
  const outDir = path.join(jobDir, 'out');
  const cancel = watchCancel(deps.redis, deps.prefix, job.id, deps.signal, deps.cancelPollMs);
  const totalSteps = hp.steps ?? 100;
  let progress: FinetuneProgress = { phase: 'preparing', step: 0, totalSteps, loss: null, valAccuracy: null };
  let lastReport = 0;
  const report = (next: FinetuneProgress, force = false) => {
    progress = next;
    const now = Date.now();
    if (!force && now - lastReport < (deps.progressIntervalMs ?? 200)) return;
    lastReport = now;
    job.updateProgress(next).catch(() => undefined);
  };
  let over = false;
  let stale = false;
  try {
    if (await cancel.userCancelled()) throw new UnrecoverableError(CANCELLED_REASON);
    report(progress, true);
    const model = await requireArtifact(deps.store, data.model, 'model');
    const dataset = await requireArtifact(deps.store, data.dataset, 'dataset');
    if (!model.files.some((file) => file.name === MODEL_CONFIG)) {
      throw new InvalidJobInputError(
        `${model.id} has no ${MODEL_CONFIG}: a bare checkpoint can be merged but not run`,
      );
    }
    // Same folder every attempt: the runtime only resumes checkpoints of the same run (model path included).
    const modelDir = await deps.store.linkFolder(model, path.join(jobDir, 'model'));
    await rm(outDir, { recursive: true, force: true });
    const head = hp.head
      ? await readStoredHead(
          deps.store.filePaths(await requireArtifact(deps.store, hp.head, 'head'))[HEAD_FILE],
        )
      : undefined;
    const backend = await initBackend({ ...backendOptions(deps.runtime), log: () => undefined });
    // wasm runs one thread per runtime: a job trains data-parallel over LORAFUSE_TRAIN_RUNTIMES of them.
    const runtimes = backend.tfBackend === 'wasm' ? loadTrainingRuntimes() : 1;
    const trained = await finetune({
      modelDir,
      dataset: await deps.store.localFile(dataset, DATASET_FILE, path.join(jobDir, 'dataset')),
      mode: data.mode,
      outDir,
      rank: hp.rank,
      alpha: hp.alpha,
      targetModules: hp.target_modules,
      steps: hp.steps,
      learningRate: hp.learning_rate,
      batchSize: hp.batch_size,
      weightDecay: hp.weight_decay,
      maxGradNorm: hp.max_grad_norm,
      warmupSteps: hp.warmup_steps,
      seed: data.seed,
      validationFraction: hp.validation_fraction,
      evalEvery: hp.eval_every,
      checkpointEvery: hp.checkpoint_every,
      checkpointDir: path.join(jobDir, 'checkpoints'),
      head,
      headSource: hp.head,
      trainHead: hp.train_head,
      workers: runtimes,
      runtimeIdleMs: deps.runtime.runtimeIdleMs,
      signal: cancel.signal,
      onProgress: ({ step, steps, loss, valAccuracy }) =>
        report(
          { ...progress, phase: 'training', step, totalSteps: steps, loss, valAccuracy },
          step === 1 || step === steps,
        ),
    });
    if (!trained.finished) throw new Error(`training stopped at step ${trained.steps} of ${totalSteps}`);
    // The last point where a cancel still wins: after this the artifact exists.
    if (cancel.signal.aborted || (await cancel.userCancelled()))
      throw new UnrecoverableError(CANCELLED_REASON);
    const last = trained.validation.at(-1) ?? null;
    const finalLoss = trained.lossCurve.at(-1)?.loss ?? null;
    report({ ...progress, phase: 'storing', valAccuracy: last?.accuracy ?? null }, true);
    if (trained.files.includes(LORAFUSE_EXTRAS)) await recordIdsInExtras(outDir, model.id, dataset.id);
    const record = await deps.store.ingestDirectory(
      trained.kind,
      outDir,
      {
        parents: [
          { kind: 'model', id: model.id },
          { kind: 'dataset', id: dataset.id },
          ...(hp.head ? [{ kind: 'head', id: hp.head }] : []),
        ],
        recipe: data.recipe,
        jobId: job.id,
        lorafuseVersion: LORAFUSE_VERSION,
        training: {
          base: model.id,
          dataset: dataset.id,
          mode: data.mode,
          hyperparameters: hp,
          seed: data.seed,
          steps: trained.steps,
          runtimes,
          backend: backend.tfBackend,
          metrics: { finalLoss, valAccuracy: last?.accuracy ?? null, valLoss: last?.loss ?? null },
        },
      },
      {
        baseModel: trained.kind === 'adapter' ? model.id : null,
        // Once per job, and only while this attempt holds the job: a stale attempt stores nothing.
        publication: (deps.publications ?? jobPublications(deps.prefix, 'finetune', job.id))('result'),
      },
    );
    over = true;
    await job.updateProgress({ ...progress, phase: 'done', valAccuracy: last?.accuracy ?? null });
    return {
      artifact: { kind: record.kind, id: record.id },
      mode: data.mode,
      steps: trained.steps,
      lossCurve: trained.lossCurve,
      validation: trained.validation,
      valAccuracy: last?.accuracy ?? null,
      finalLoss,
      resumedFromStep: trained.resumedFromStep,
      samplesPerSecond: trained.samplesPerSecond,
    };
  } catch (error) {
    stale = isStalePublication(error);
    const cancelledByUser = await cancel.cancelledByUser();
    try {
      return await failJob(error, {
        redis: deps.redis,
        prefix: deps.prefix,
        jobId: job.id,
        cancelledByUser,
        aborted: cancel.signal.aborted,
        finalAttempt: job.attemptsMade + 1 >= job.maxAttempts,
      });
    } catch (failure) {
      // Checkpoints stay only for a retry that will come.
      over = !stale && (failure instanceof UnrecoverableError || job.attemptsMade + 1 >= job.maxAttempts);
      throw failure;
    }
  } finally {
    cancel.stop();
    // A stale attempt leaves the job folder to the attempt that owns the job now.
    if (over) await rm(jobDir, { recursive: true, force: true });
    else if (!stale) await rm(outDir, { recursive: true, force: true });
  }
}
