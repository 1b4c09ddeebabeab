// executeMerge: the plan's tensors through the streamed writer, then the folder's JSON files
// (config.json for models; adapter_config.json + lorafuse.json for adapters).
import {
  type ExecuteOptions,
  jsonFile,
  type MergeResult,
  outputModelConfig,
  writeMergedCheckpoint,
} from './execute.ts';
import { executeDeltaMerge } from './execute-delta.ts';
import type { MergePlan } from './plan-types.ts';

/** The JSON files written beside the weights: file name -> text (also what a sharded merge's parent writes). */
export function outputSideFiles(plan: MergePlan): Record<string, string> {
  if (plan.output.kind === 'model') {
    const config = outputModelConfig(plan);
    return config ? { 'config.json': jsonFile(config) } : {};
  }
  return {
    'adapter_config.json': jsonFile(plan.output.config ?? {}),
    'lorafuse.json': jsonFile(plan.output.extras ?? {}),
  };
}

export async function executeMerge(plan: MergePlan, options: ExecuteOptions): Promise<MergeResult> {
  if (plan.deltaSpace) {
    return executeDeltaMerge(plan, options);
  }
  return writeMergedCheckpoint(plan, options, { extraFiles: async () => outputSideFiles(plan) });
}
