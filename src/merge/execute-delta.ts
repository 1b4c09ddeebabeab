// The delta-space path (lora space delta, peft_* methods): lands with the geometric-peft helper's
// mergeLoraModule (src/merge/lora/module-merge.ts).
import { MergePlanError } from './errors.ts';
import type { ExecuteOptions, MergeResult } from './execute.ts';
import type { MergePlan } from './plan-types.ts';

export async function executeDeltaMerge(plan: MergePlan, _options: ExecuteOptions): Promise<MergeResult> {
  throw new MergePlanError(
    'unsupported',
    `${plan.method.name} in delta space is not available in this build`,
  );
}
