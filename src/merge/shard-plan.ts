// Splitting one merge into per-shard work: the output's Hugging Face shards are assigned up front, exactly as
// the checkpoint writer assigns them, so each shard can be merged on its own (by a job on another machine)
// and the pieces put together are the bytes a single run writes. Tensors are independent and every random
// draw is keyed by the tensor's name (random.ts), so merging a subset changes none of its values.
import { assignShards, DTYPE_BYTES, numelOf, shardIndexText } from '../tensors/index.ts';
import { MergePlanError } from './errors.ts';
import type { MergePlan } from './plan-types.ts';

export interface ShardPlan {
  /** The shard's file name in the output folder (`model-00002-of-00005.safetensors`). */
  file: string;
  /** Its tensors in writing order. */
  tensors: string[];
  /** Sum of its tensors' data bytes. */
  bytes: number;
}

/**
 * The output's shards at `maxShardBytes` (greedy in plan order, as transformers and the checkpoint writer do),
 * with the index text the single run would write; one shard: no index.
 */
export function planShards(
  plan: MergePlan,
  maxShardBytes: number,
): { shards: ShardPlan[]; index: string | null } {
  const specs = plan.tensors.map((t) => ({ name: t.name, dtype: t.dtype, shape: t.shape }));
  const shards = assignShards(specs, maxShardBytes, plan.output.stem);
  return {
    shards: shards.map((shard) => ({
      file: shard.file,
      tensors: shard.specs.map((spec) => spec.name),
      bytes: shard.specs.reduce((sum, spec) => sum + numelOf(spec.shape) * DTYPE_BYTES[spec.dtype], 0),
    })),
    index: shards.length > 1 ? shardIndexText(shards) : null,
  };
}

/**
 * The shards a plan is split into for separate jobs, or null when it runs whole: a model written in more than
 * one shard by the tensor loop. Delta-space merges (their SVDs span modules) and adapters (PEFT reads one
 * adapter_model.safetensors) always run whole.
 */
export function shardPlanFor(
  plan: MergePlan,
  maxShardBytes: number,
): { shards: ShardPlan[]; index: string } | null {
  if (plan.deltaSpace || plan.output.kind !== 'model' || plan.method.kind !== 'tensor') return null;
  if (plan.output.initTensors && plan.output.initTensors.length > 0) return null;
  const { shards, index } = planShards(plan, maxShardBytes);
  return index === null ? null : { shards, index };
}

/** The plan restricted to `tensors` (in their plan order); a name the plan lacks is an error. */
export function subsetPlan(plan: MergePlan, tensors: readonly string[]): MergePlan {
  const wanted = new Set(tensors);
  const kept = plan.tensors.filter((t) => wanted.has(t.name));
  if (kept.length !== wanted.size) {
    const known = new Set(plan.tensors.map((t) => t.name));
    const missing = tensors.find((name) => !known.has(name));
    throw new MergePlanError('shard_mismatch', `the plan has no tensor ${missing} (its inputs changed?)`, {
      tensor: missing,
    });
  }
  return { ...plan, tensors: kept, warnings: [] };
}
