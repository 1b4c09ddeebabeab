// The delta-space path (lora space delta, and every peft_* method): each LoRA module goes through
// mergeLoraModule. Output `adapter`: a PEFT folder with the merged factors (scaling folded in,
// lora_alpha = r); output `model`: the base model with base weight + merged ΔW for every module.
import { MergeCancelledError } from './errors.ts';
import {
  type ExecuteOptions,
  jsonFile,
  type MergeResult,
  outputModelConfig,
  writeMergedCheckpoint,
} from './execute.ts';
import { PEFT_PREFIX } from './lora/adapter.ts';
import { type ModuleMergeResult, mergeLoraModule } from './lora/module-merge.ts';
import type { LoraModuleInput } from './method.ts';
import { recipeOutputDtype } from './plan-common.ts';
import type { MergePlan, PlannedModule, PlannedTensor } from './plan-types.ts';
import { randomForTensor } from './random.ts';

async function mergeModule(plan: MergePlan, planned: PlannedModule): Promise<ModuleMergeResult> {
  const adapters: LoraModuleInput[] = await Promise.all(
    planned.layouts.map(async (layout, i) => ({
      a: await planned.sources[i].readFloat32(layout.aKey),
      b: await planned.sources[i].readFloat32(layout.bKey),
      rank: layout.rank,
      inFeatures: layout.inFeatures,
      outFeatures: layout.outFeatures,
      scaling: layout.scaling,
      params: planned.perModel[i],
    })),
  );
  return mergeLoraModule({
    method: plan.method,
    moduleName: planned.module,
    adapters,
    params: planned.global,
    delta: plan.deltaSpace,
    random: randomForTensor(plan.seed, planned.module),
  });
}

function relativeErrors(results: Map<string, ModuleMergeResult>): Record<string, number> {
  const errors: Record<string, number> = {};
  for (const [module, result] of results)
    if (result.relativeError !== undefined) errors[module] = result.relativeError;
  return errors;
}

export async function executeDeltaMerge(plan: MergePlan, options: ExecuteOptions): Promise<MergeResult> {
  if (plan.deltaSpace?.output === 'model') return executeIntoModel(plan, options);
  return executeIntoAdapter(plan, options);
}

/** Base model + ΔW per module: each delta is computed when its base weight is written. */
async function executeIntoModel(plan: MergePlan, options: ExecuteOptions): Promise<MergeResult> {
  const byWeight = new Map(plan.modules.map((m) => [m.baseWeight!, m]));
  const results = new Map<string, ModuleMergeResult>();
  const result = await writeMergedCheckpoint(plan, options, {
    override: {
      async tensor(planned, read) {
        const module = byWeight.get(planned.name);
        if (!module) return undefined;
        const merged = await mergeModule(plan, module);
        results.set(module.module, { relativeError: merged.relativeError });
        const weight = (await read(planned.reads[0])).slice();
        const delta = merged.delta!;
        const layout = module.layouts[0];
        const [out, inF] = [layout.outFeatures, layout.inFeatures];
        if (layout.embedding || layout.fanInFanOut) {
          // The base stores this weight as [in, out]: add ΔWᵀ.
          for (let o = 0; o < out; o++)
            for (let i = 0; i < inF; i++) weight[i * out + o] += delta[o * inF + i];
        } else {
          for (let k = 0; k < weight.length; k++) weight[k] += delta[k];
        }
        return weight;
      },
    },
    extraFiles: async (): Promise<Record<string, string>> => {
      const config = outputModelConfig(plan);
      return config ? { 'config.json': jsonFile(config) } : {};
    },
  });
  const errors = relativeErrors(results);
  if (Object.keys(errors).length > 0) result.diagnostics = { ...result.diagnostics, relativeError: errors };
  return result;
}

/** Merges every module first (factors are small), then writes the adapter folder. */
async function executeIntoAdapter(plan: MergePlan, options: ExecuteOptions): Promise<MergeResult> {
  const results = new Map<string, ModuleMergeResult>();
  const total = plan.modules.length;
  for (const planned of plan.modules) {
    if (options.signal?.aborted) throw new MergeCancelledError();
    results.set(planned.module, await mergeModule(plan, planned));
    options.onProgress?.({ phase: 'merging', tensorsDone: results.size, tensorsTotal: total });
  }
  const firstA = plan.modules[0]
    ? plan.modules[0].sources[0].info(plan.modules[0].layouts[0].aKey).dtype
    : 'F32';
  const dtype = recipeOutputDtype(plan.recipe) ?? firstA;
  const factorTensors: PlannedTensor[] = [];
  const data = new Map<string, Float32Array>();
  for (const planned of plan.modules) {
    const merged = results.get(planned.module)!;
    const layout = planned.layouts[0];
    const [aName, bName] = layout.embedding
      ? [
          `${PEFT_PREFIX}${planned.module}.lora_embedding_A`,
          `${PEFT_PREFIX}${planned.module}.lora_embedding_B`,
        ]
      : [`${PEFT_PREFIX}${planned.module}.lora_A.weight`, `${PEFT_PREFIX}${planned.module}.lora_B.weight`];
    const rank = merged.rank!;
    for (const [name, shape, values] of [
      [aName, [rank, layout.inFeatures], merged.a!],
      [bName, [layout.outFeatures, rank], merged.b!],
    ] as const) {
      factorTensors.push({
        name,
        shape: [...shape],
        dtype,
        action: 'copy',
        reads: [],
        t: 0,
        global: {},
        perModel: [],
      });
      data.set(name, values);
    }
  }
  const outputPlan: MergePlan = { ...plan, tensors: [...factorTensors, ...plan.tensors] };
  const result = await writeMergedCheckpoint(
    outputPlan,
    { ...options, onProgress: undefined },
    {
      override: { tensor: async (planned) => data.get(planned.name) },
      extraFiles: async () => ({
        'adapter_config.json': jsonFile(mergedAdapterConfig(plan, results)),
        'lorafuse.json': jsonFile(plan.output.extras ?? {}),
      }),
    },
  );
  const errors = relativeErrors(results);
  if (Object.keys(errors).length > 0) result.diagnostics = { ...result.diagnostics, relativeError: errors };
  return result;
}

/** The first adapter's config with r = lora_alpha = the merged rank (scaling 1); per-module ranks as patterns. */
function mergedAdapterConfig(
  plan: MergePlan,
  results: Map<string, ModuleMergeResult>,
): Record<string, unknown> {
  const ranks = [...results.entries()].map(([module, r]) => [module, r.rank!] as const);
  const counts = new Map<number, number>();
  for (const [, rank] of ranks) counts.set(rank, (counts.get(rank) ?? 0) + 1);
  const r = [...counts.entries()].sort((x, y) => y[1] - x[1] || y[0] - x[0])[0]?.[0] ?? 1;
  const rankPattern: Record<string, number> = {};
  for (const [module, rank] of ranks) if (rank !== r) rankPattern[module] = rank;
  return {
    ...(plan.output.config ?? {}),
    r,
    lora_alpha: r,
    rank_pattern: rankPattern,
    alpha_pattern: { ...rankPattern },
    use_rslora: false,
    use_dora: false,
  };
}
