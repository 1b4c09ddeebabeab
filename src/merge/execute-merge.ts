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

export async function executeMerge(plan: MergePlan, options: ExecuteOptions): Promise<MergeResult> {
  if (plan.deltaSpace) {
    return executeDeltaMerge(plan, options);
  }
  return writeMergedCheckpoint(plan, options, {
    extraFiles: async (): Promise<Record<string, string>> => {
      if (plan.output.kind === 'model') {
        const config = outputModelConfig(plan);
        return config ? { 'config.json': jsonFile(config) } : {};
      }
      return {
        'adapter_config.json': jsonFile(plan.output.config ?? {}),
        'lorafuse.json': jsonFile(plan.output.extras ?? {}),
      };
    },
  });
}
