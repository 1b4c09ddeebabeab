// Hugging Face module names that changed between transformers majors. transformers 5 renamed ViT's modules in
// memory while checkpoints on disk keep the 4.x names, and PEFT saves adapter keys under the in-memory names,
// so one layer has two spellings. This table is shared by the runtime (src/model) and the merge engine's
// base checks (src/merge), which may both import this layer and nothing of each other.

/** [4.x pattern, its 5.x spelling, 5.x pattern, its 4.x spelling] for ViT. */
export const VIT_MODULE_RENAMES: ReadonlyArray<readonly [RegExp, string, RegExp, string]> = [
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

/**
 * Every spelling a module may have in a checkpoint, the given one first: a module named the transformers-5 way
 * also under its 4.x name, and the other way round. Callers take the first one the checkpoint holds.
 */
export function moduleSpellings(module: string): string[] {
  const out = [module];
  for (const [pattern4, name5, pattern5, name4] of VIT_MODULE_RENAMES) {
    if (pattern5.test(module)) out.push(module.replace(pattern5, name4));
    else if (pattern4.test(module)) out.push(module.replace(pattern4, name5));
  }
  return out;
}
