// A large merge as a BullMQ flow built at run time: the merge job plans, queues one child job per output shard
// (run-shard-job.ts; any merge worker on any machine takes them) and waits for them without holding a worker.
// When the last shard finished, BullMQ runs the merge job again: it checks every shard (a failed or cancelled one
// fails the whole merge, and nothing is published), writes model.safetensors.index.json and config.json beside the
// shard blobs, and the caller publishes one artifact made of them. The bytes are a single run's (shard-plan.ts).
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { Queue, UnrecoverableError, WaitingChildrenError } from 'bullmq';
import { type MergePlan, outputSideFiles, type ShardPlan, shardPlanFor } from '../../src/merge/index.ts';
import {
  CANCELLED_REASON,
  DEFAULT_JOB_OPTIONS,
  JOB_ERROR_TYPES,
  jobKeys,
  type MergeJobPayload,
  type MergeJobResult,
  type MergeProgress,
  type MergeShardResult,
  QUEUE_NAMES,
  shardJobId,
} from '../../src/queue/index.ts';
import type { ArtifactFile } from '../../src/store/index.ts';
import type { JobRunDependencies } from '../processor-dependencies.ts';

/** What a merge job needs of BullMQ to become the parent of its shard jobs (the sandboxed job's own methods). */
export interface ShardFlowControls {
  /** `<prefix>:merge`: how children name their parent's queue. */
  queueQualifiedName: string;
  updateData(data: MergeJobPayload): Promise<void>;
  /** Moves the job to waiting-children; false when none of its children is pending any more. */
  moveToWaitingChildren(): Promise<boolean>;
  /** Children that failed for good (their dependency ignored, so the parent still runs): job key -> reason. */
  ignoredChildrenFailures(): Promise<Record<string, string>>;
}

export interface ShardedJob {
  id: string;
  data: MergeJobPayload;
  flow?: ShardFlowControls;
  childrenValues?: () => Promise<Record<string, unknown>>;
}

/** The folder's small files are written; the shards are blobs already, kept by the job until it publishes. */
export interface ShardedOutput {
  kind: 'model';
  stored: ArtifactFile[];
  diagnostics?: Record<string, unknown>;
  sharding: NonNullable<MergeJobResult['sharding']>;
}

/**
 * Runs `plan` as shard jobs when it is written in more than one shard and the job can be a flow parent; null
 * when it runs whole here. Throws WaitingChildrenError after queueing (the job resumes when the shards are done).
 */
export async function mergeInShards(
  job: ShardedJob,
  deps: JobRunDependencies,
  plan: MergePlan,
  options: { outDir: string; maxShardBytes: number; report: (progress: MergeProgress) => void },
): Promise<ShardedOutput | null> {
  if (!job.flow || job.data.shard) return null;
  // A resumed job keeps the size it split with, whatever the deployment's setting is now.
  const maxShardBytes = job.data.sharding?.maxShardBytes ?? options.maxShardBytes;
  const split = shardPlanFor(plan, maxShardBytes);
  if (!split) {
    if (job.data.sharding) throw new Error('the merge was split into shards but its plan no longer is');
    return null;
  }
  if (!job.data.sharding) {
    await queueShardJobs(job, deps, split.shards, maxShardBytes);
    options.report({
      phase: 'merging',
      tensorsDone: 0,
      tensorsTotal: plan.tensors.length,
      shardsDone: 0,
      shardsTotal: split.shards.length,
    });
  }
  // Also after a crash between queueing and waiting: BullMQ says whether any shard is still pending.
  if (await job.flow.moveToWaitingChildren()) throw new WaitingChildrenError();
  return assembleShards(job, deps, plan, { ...split, maxShardBytes }, options.outDir);
}

async function queueShardJobs(
  job: ShardedJob,
  deps: JobRunDependencies,
  shards: ShardPlan[],
  maxShardBytes: number,
): Promise<void> {
  const flow = job.flow as ShardFlowControls;
  const outline = shards.map((s) => ({ file: s.file, tensors: s.tensors.length }));
  const queue = new Queue(QUEUE_NAMES.merge, { connection: deps.redis, prefix: deps.prefix });
  try {
    // Fixed ids: queueing again after a crash adds nothing. A failed shard does not fail the parent at once
    // (ignoreDependencyOnFailure): the parent runs when every shard is done and cleans up after all of them.
    await queue.addBulk(
      shards.map((shard, index) => ({
        name: QUEUE_NAMES.merge,
        data: {
          recipe: job.data.recipe,
          inputs: job.data.inputs,
          seed: job.data.seed,
          shard: {
            parent: job.id,
            index,
            count: shards.length,
            file: shard.file,
            tensors: shard.tensors,
            outline,
          },
        } satisfies MergeJobPayload,
        opts: {
          ...DEFAULT_JOB_OPTIONS,
          jobId: shardJobId(job.id, index),
          parent: { id: job.id, queue: flow.queueQualifiedName },
          ignoreDependencyOnFailure: true,
        },
      })),
    );
  } finally {
    await queue.close();
  }
  await flow.updateData({ ...job.data, sharding: { shards: shards.length, maxShardBytes } });
}

async function assembleShards(
  job: ShardedJob,
  deps: JobRunDependencies,
  plan: MergePlan,
  split: { shards: ShardPlan[]; index: string; maxShardBytes: number },
  outDir: string,
): Promise<ShardedOutput> {
  const keys = jobKeys(deps.prefix);
  const flow = job.flow as ShardFlowControls;
  const count = split.shards.length;
  const label = (index: number) => `shard ${index + 1} of ${count} (${split.shards[index]?.file ?? '?'})`;
  // A cancel reaches the shards through the parent's flag; they stop, and the parent ends as cancelled here.
  if ((await deps.redis.exists(keys.cancel(job.id))) === 1) throw new UnrecoverableError(CANCELLED_REASON);
  const failures = Object.keys(await flow.ignoredChildrenFailures());
  if (failures.length > 0) {
    const failed = failures.map((key) => key.slice(key.lastIndexOf(':') + 1)).sort();
    const index = Number(/-s(\d+)$/.exec(failed[0])?.[1] ?? -1);
    const recorded = await deps.redis.get(keys.error(failed[0]));
    const cause = recorded ? (JSON.parse(recorded) as { type: string; message: string }) : null;
    const failure = {
      type: cause?.type ?? JOB_ERROR_TYPES.internal,
      message: `${label(index)} failed${failures.length > 1 ? ` (and ${failures.length - 1} more)` : ''}: ${
        cause?.message ?? 'its worker gave up on it'
      }`,
    };
    await deps.redis.set(keys.error(job.id), JSON.stringify(failure));
    // The shards' own error records are read: no view shows shard jobs, so they go.
    await deps.redis.del(...split.shards.map((_, i) => keys.error(shardJobId(job.id, i))));
    throw new UnrecoverableError(failure.message);
  }
  if (!job.childrenValues) throw new Error('a sharded merge needs its children results');
  const results = new Map<number, MergeShardResult>();
  for (const value of Object.values(await job.childrenValues()) as MergeShardResult[]) {
    if (value?.shard) results.set(value.shard.index, value);
  }
  const held = await deps.store.holds(job.id);
  const stored: ArtifactFile[] = [];
  const nonFinite: Record<string, number> = {};
  for (const [index, shard] of split.shards.entries()) {
    const result = results.get(index);
    if (!result || result.shard.file !== shard.file || held[shard.file] !== result.shard.sha256) {
      throw new Error(`${label(index)} has no stored result`);
    }
    stored.push({ name: shard.file, size: result.shard.size, sha256: result.shard.sha256 });
    Object.assign(nonFinite, result.diagnostics?.nonFiniteValues ?? {});
  }
  await mkdir(outDir, { recursive: true });
  await writeFile(path.join(outDir, `${plan.output.stem}.safetensors.index.json`), split.index);
  for (const [file, text] of Object.entries(outputSideFiles(plan)))
    await writeFile(path.join(outDir, file), text);
  const diagnostics: Record<string, unknown> = {};
  if (Object.keys(nonFinite).length > 0) diagnostics.nonFiniteValues = nonFinite;
  if (plan.warnings.length > 0) diagnostics.warnings = plan.warnings;
  return {
    kind: 'model',
    stored,
    diagnostics: Object.keys(diagnostics).length > 0 ? diagnostics : undefined,
    sharding: {
      maxShardBytes: split.maxShardBytes,
      shards: [...results.values()]
        .sort((a, b) => a.shard.index - b.shard.index)
        .map(({ shard }) => ({
          index: shard.index,
          file: shard.file,
          size: shard.size,
          tensors: shard.tensors,
          worker: shard.worker,
          mergeMs: shard.mergeMs,
        })),
    },
  };
}

/** Whether a thrown error ends the sharded merge for good (its shard blobs are then released). */
export function endsShardedMerge(error: unknown, finalAttempt: boolean): boolean {
  return finalAttempt || (error as Error)?.name === 'UnrecoverableError';
}
