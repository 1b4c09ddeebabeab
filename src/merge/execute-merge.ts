// executeMerge: the plan's tensors through the streamed writer, then the folder's JSON files
// (config.json for models; adapter_config.json + lorafuse.json for adapters).
import { type ExecuteOptions, jsonFile, type MergeResult, writeMergedCheckpoint } from './execute.ts';
import { recipeOutputDtype } from './plan-common.ts';
import type { MergePlan } from './plan-types.ts';

const TORCH_DTYPE: Record<string, string> = {
  F32: 'float32',
  F16: 'float16',
  BF16: 'bfloat16',
  F64: 'float64',
};

/** config.json of the output model: the base's (or first model's), with torch_dtype following out_dtype. */
export function outputModelConfig(plan: MergePlan): Record<string, unknown> | undefined {
  const config = plan.output.config;
  if (!config) return undefined;
  const dtype = recipeOutputDtype(plan.recipe);
  return dtype && 'torch_dtype' in config ? { ...config, torch_dtype: TORCH_DTYPE[dtype] } : config;
}

export async function executeMerge(plan: MergePlan, options: ExecuteOptions): Promise<MergeResult> {
  if (plan.deltaSpace) {
    const { executeDeltaMerge } = await import('./execute-delta.ts');
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
