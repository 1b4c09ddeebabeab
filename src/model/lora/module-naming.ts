/**
 * transformers 5 renamed ViT's modules in memory while checkpoints on disk keep the 4.x names; PEFT saves adapter
 * keys under the in-memory names, so one layer has two adapter spellings. The runtime works in checkpoint (4.x)
 * names; these maps translate adapter module names both ways.
 */
import { VIT_MODULE_RENAMES as VIT_RENAMES } from '../../tensors/module-renames.ts';

export type AdapterNaming = 'transformers5' | 'transformers4';

/** An adapter's module name (either spelling) → the checkpoint name the runtime uses. */
export function toCheckpointName(modelType: string, adapterModule: string): string {
  if (modelType !== 'vit') return adapterModule;
  for (const [, , pattern5, name4] of VIT_RENAMES) {
    if (pattern5.test(adapterModule)) return adapterModule.replace(pattern5, name4);
  }
  return adapterModule;
}

/** A checkpoint module name → how PEFT under the given transformers major version names it. */
export function toAdapterName(modelType: string, checkpointModule: string, naming: AdapterNaming): string {
  if (modelType !== 'vit' || naming === 'transformers4') return checkpointModule;
  for (const [pattern4, name5] of VIT_RENAMES) {
    if (pattern4.test(checkpointModule)) return checkpointModule.replace(pattern4, name5);
  }
  return checkpointModule;
}

/** Which spelling an adapter uses, judged from its module names. */
export function detectNaming(modelType: string, adapterModules: string[]): AdapterNaming {
  if (modelType !== 'vit') return 'transformers5';
  return adapterModules.some((m) => /^vit\.encoder\.layer\./.test(m)) ? 'transformers4' : 'transformers5';
}
