/** The adapter_config.json fields the runtime reads; the rest is kept verbatim. */
export interface PeftLoraConfig {
  peft_type: string;
  r: number;
  lora_alpha: number;
  target_modules: string[] | string | null;
  modules_to_save: string[] | null;
  use_rslora?: boolean;
  rank_pattern?: Record<string, number>;
  alpha_pattern?: Record<string, number>;
  fan_in_fan_out?: boolean;
  use_dora?: boolean;
  base_model_name_or_path?: string | null;
  [field: string]: unknown;
}

/** PEFT's pattern lookup: the first pattern key that matches the module name as a dotted suffix. */
export function patternKey(
  patterns: Record<string, number> | undefined,
  moduleName: string,
): string | undefined {
  if (!patterns) return undefined;
  return Object.keys(patterns).find((key) => new RegExp(`^(.*\\.)?(${key})$`).test(moduleName));
}

/** lora_alpha / r, or lora_alpha / √r with use_rslora, honouring alpha_pattern (r is the module's actual rank). */
export function loraScale(config: PeftLoraConfig, adapterModuleName: string, rank: number): number {
  const alphaKey = patternKey(config.alpha_pattern, adapterModuleName);
  const alpha = alphaKey === undefined ? config.lora_alpha : config.alpha_pattern![alphaKey];
  return config.use_rslora ? alpha / Math.sqrt(rank) : alpha / rank;
}

/**
 * adapter_config.json exactly as PEFT 0.21 writes it for a LoRA adapter (field set and defaults), so a
 * lorafuse-trained adapter is indistinguishable from one PEFT saved.
 */
export function peftLoraConfig(fields: {
  r: number;
  loraAlpha: number;
  targetModules: string[];
  modulesToSave: string[] | null;
  useRslora: boolean;
  baseModelClass: string | null;
  parentLibrary: string | null;
  baseModelNameOrPath: string | null;
  rankPattern?: Record<string, number>;
  alphaPattern?: Record<string, number>;
}): PeftLoraConfig {
  return {
    alora_invocation_tokens: null,
    alpha_pattern: fields.alphaPattern ?? {},
    arrow_config: null,
    auto_mapping:
      fields.baseModelClass === null
        ? null
        : { base_model_class: fields.baseModelClass, parent_library: fields.parentLibrary },
    base_model_name_or_path: fields.baseModelNameOrPath,
    bias: 'none',
    corda_config: null,
    ensure_weight_tying: false,
    eva_config: null,
    exclude_modules: null,
    fan_in_fan_out: false,
    inference_mode: true,
    init_lora_weights: true,
    kasa_config: null,
    layer_replication: null,
    layers_pattern: null,
    layers_to_transform: null,
    loftq_config: {},
    lora_alpha: fields.loraAlpha,
    lora_bias: false,
    lora_dropout: 0.0,
    lora_ga_config: null,
    megatron_config: null,
    megatron_core: 'megatron.core',
    modules_to_save: fields.modulesToSave,
    monteclora_config: null,
    peft_type: 'LORA',
    peft_version: '0.21.0',
    qalora_group_size: 16,
    r: fields.r,
    rank_pattern: fields.rankPattern ?? {},
    revision: null,
    target_modules: fields.targetModules,
    target_parameters: null,
    task_type: null,
    trainable_token_indices: null,
    use_bdlora: null,
    use_dora: false,
    use_qalora: false,
    use_rslora: fields.useRslora,
    velora_config: null,
  };
}

/** transformers class and module PEFT records in auto_mapping, per model_type. */
export const HF_CLASSES: Record<string, { baseModelClass: string; parentLibrary: string } | undefined> = {
  vit: { baseModelClass: 'ViTForImageClassification', parentLibrary: 'transformers.models.vit.modeling_vit' },
  bert: {
    baseModelClass: 'BertForSequenceClassification',
    parentLibrary: 'transformers.models.bert.modeling_bert',
  },
  clip_vision_model: {
    baseModelClass: 'CLIPVisionModelWithProjection',
    parentLibrary: 'transformers.models.clip.modeling_clip',
  },
};
