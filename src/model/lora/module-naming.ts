/**
 * transformers 5 renamed ViT's modules in memory while checkpoints on disk keep the 4.x names; PEFT saves adapter
 * keys under the in-memory names, so one layer has two adapter spellings. The runtime works in checkpoint (4.x)
 * names; these maps translate adapter module names both ways.
 */
export type AdapterNaming = 'transformers5' | 'transformers4';

const VIT_RENAMES: Array<[RegExp, string, RegExp, string]> = [
  // [4.x pattern, its 5.x spelling, 5.x pattern, its 4.x spelling]
  [
    /^vit\.encoder\.layer\.(\d+)\.attention\.attention\.query$/,
    'vit.layers.$1.attention.q_proj',
    /^vit\.layers\.(\d+)\.attention\.q_proj$/,
    'vit.encoder.layer.$1.attention.attention.query',
  ],
  [
    /^vit\.encoder\.layer\.(\d+)\.attention\.attention\.key$/,
    'vit.layers.$1.attention.k_proj',
    /^vit\.layers\.(\d+)\.attention\.k_proj$/,
    'vit.encoder.layer.$1.attention.attention.key',
  ],
  [
    /^vit\.encoder\.layer\.(\d+)\.attention\.attention\.value$/,
    'vit.layers.$1.attention.v_proj',
    /^vit\.layers\.(\d+)\.attention\.v_proj$/,
    'vit.encoder.layer.$1.attention.attention.value',
  ],
  [
    /^vit\.encoder\.layer\.(\d+)\.attention\.output\.dense$/,
    'vit.layers.$1.attention.o_proj',
    /^vit\.layers\.(\d+)\.attention\.o_proj$/,
    'vit.encoder.layer.$1.attention.output.dense',
  ],
  [
    /^vit\.encoder\.layer\.(\d+)\.intermediate\.dense$/,
    'vit.layers.$1.mlp.fc1',
    /^vit\.layers\.(\d+)\.mlp\.fc1$/,
    'vit.encoder.layer.$1.intermediate.dense',
  ],
  [
    /^vit\.encoder\.layer\.(\d+)\.output\.dense$/,
    'vit.layers.$1.mlp.fc2',
    /^vit\.layers\.(\d+)\.mlp\.fc2$/,
    'vit.encoder.layer.$1.output.dense',
  ],
];

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
