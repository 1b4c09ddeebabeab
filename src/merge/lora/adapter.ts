// PEFT LoRA adapter folders: adapter_config.json parsing, the module layout of adapter_model.safetensors
// (base_model.model.<module>.lora_A.weight [r,in], .lora_B.weight [out,r], lora_embedding_A/B for
// embeddings, modules_to_save stored whole) and the check of an adapter against its base model.
import { type Checkpoint, JsonLimitError, moduleSpellings, parseBoundedJson } from '../../tensors/index.ts';
import { AdapterError } from '../errors.ts';

export const PEFT_PREFIX = 'base_model.model.';

export interface AdapterConfig {
  r: number;
  loraAlpha: number;
  /** A list of module-name suffixes, a regex string (PEFT allows both), or null. */
  targetModules: string[] | string | null;
  rankPattern: Record<string, number>;
  alphaPattern: Record<string, number>;
  useRslora: boolean;
  fanInFanOut: boolean;
  modulesToSave: string[];
  useDora: boolean;
  loraBias: boolean;
  baseModelNameOrPath: string | null;
  /** The file as read, so a merged adapter can start from the first input's config. */
  raw: Record<string, unknown>;
}

export interface AdapterModule {
  /** The base model's module name, e.g. `model.layers.0.self_attn.q_proj`. */
  module: string;
  aKey: string;
  bKey: string;
  rank: number;
  inFeatures: number;
  outFeatures: number;
  /** lora_alpha / r, or lora_alpha / √r with rslora, after rank_pattern and alpha_pattern. */
  scaling: number;
  /** lora_embedding_A/B: the base weight is [in, out] (num_embeddings × dim). */
  embedding: boolean;
  /** Conv1D-style base weight stored [in, out]. */
  fanInFanOut: boolean;
}

export interface AdapterLayout {
  modules: AdapterModule[];
  /** Whole tensors of modules_to_save, by their base-model name (e.g. `classifier.weight`). */
  savedModules: string[];
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function numberMap(value: unknown, field: string): Record<string, number> {
  if (value === undefined || value === null) return {};
  if (!isObject(value))
    throw new AdapterError('invalid_config', `adapter_config.json: ${field} must be a mapping`);
  const out: Record<string, number> = {};
  for (const [key, v] of Object.entries(value)) {
    if (typeof v !== 'number' || !Number.isFinite(v) || v <= 0) {
      throw new AdapterError(
        'invalid_config',
        `adapter_config.json: ${field}.${key} must be a positive number`,
      );
    }
    out[key] = v;
  }
  return out;
}

/** Parses adapter_config.json (an object or its text); only LoRA adapters are accepted. */
export function parseAdapterConfig(json: unknown): AdapterConfig {
  let raw = json;
  if (typeof json === 'string') {
    try {
      raw = parseBoundedJson(json);
    } catch (error) {
      const why = error instanceof JsonLimitError ? `: ${error.message}` : '';
      throw new AdapterError('invalid_config', `adapter_config.json is not valid JSON${why}`);
    }
  }
  if (!isObject(raw)) throw new AdapterError('invalid_config', 'adapter_config.json must be a JSON object');
  if (raw.peft_type !== undefined && raw.peft_type !== 'LORA') {
    throw new AdapterError(
      'unsupported_adapter',
      `peft_type ${String(raw.peft_type)} is not supported (only LORA)`,
    );
  }
  const r = raw.r;
  if (typeof r !== 'number' || !Number.isSafeInteger(r) || r <= 0) {
    throw new AdapterError('invalid_config', 'adapter_config.json: r must be a positive integer');
  }
  const loraAlpha = raw.lora_alpha ?? r;
  if (typeof loraAlpha !== 'number' || !Number.isFinite(loraAlpha) || loraAlpha <= 0) {
    throw new AdapterError('invalid_config', 'adapter_config.json: lora_alpha must be a positive number');
  }
  let targetModules: string[] | string | null = null;
  if (typeof raw.target_modules === 'string') targetModules = raw.target_modules;
  else if (Array.isArray(raw.target_modules)) {
    if (!raw.target_modules.every((m) => typeof m === 'string')) {
      throw new AdapterError('invalid_config', 'adapter_config.json: target_modules must be strings');
    }
    targetModules = raw.target_modules as string[];
  }
  const modulesToSave = Array.isArray(raw.modules_to_save) ? raw.modules_to_save : [];
  if (!modulesToSave.every((m) => typeof m === 'string')) {
    throw new AdapterError('invalid_config', 'adapter_config.json: modules_to_save must be strings');
  }
  const bias = raw.bias ?? 'none';
  if (bias !== 'none') {
    throw new AdapterError('unsupported_adapter', `bias "${String(bias)}" is not supported (only "none")`);
  }
  return {
    r,
    loraAlpha,
    targetModules,
    rankPattern: numberMap(raw.rank_pattern, 'rank_pattern'),
    alphaPattern: numberMap(raw.alpha_pattern, 'alpha_pattern'),
    useRslora: raw.use_rslora === true,
    fanInFanOut: raw.fan_in_fan_out === true,
    modulesToSave: modulesToSave as string[],
    useDora: raw.use_dora === true,
    loraBias: raw.lora_bias === true,
    baseModelNameOrPath: typeof raw.base_model_name_or_path === 'string' ? raw.base_model_name_or_path : null,
    raw,
  };
}

/** PEFT's get_pattern_key: an exact key, else the first pattern matching `(.*\.)?(pattern)$`. */
export function matchPattern(patterns: Record<string, number>, module: string): number | undefined {
  if (module in patterns) return patterns[module];
  for (const [pattern, value] of Object.entries(patterns)) {
    try {
      if (new RegExp(`^(.*\\.)?(${pattern})$`).test(module)) return value;
    } catch {
      if (module.endsWith(`.${pattern}`)) return value;
    }
  }
  return undefined;
}

/** The rank and scaling PEFT gives `module` under this config. */
export function moduleScaling(config: AdapterConfig, module: string): { rank: number; scaling: number } {
  const rank = matchPattern(config.rankPattern, module) ?? config.r;
  const alpha = matchPattern(config.alphaPattern, module) ?? config.loraAlpha;
  return { rank, scaling: config.useRslora ? alpha / Math.sqrt(rank) : alpha / rank };
}

const LORA_KEY = /^(.*)\.(lora_A|lora_B)\.weight$/;
const EMBEDDING_KEY = /^(.*)\.(lora_embedding_A|lora_embedding_B)$/;

/** Lists the LoRA modules and saved modules of adapter weights, checking each against the config. */
export function describeAdapter(
  config: AdapterConfig,
  weights: Pick<Checkpoint, 'names' | 'info'>,
): AdapterLayout {
  if (config.useDora)
    throw new AdapterError('unsupported_adapter', 'DoRA adapters (use_dora) are not supported');
  if (config.loraBias) throw new AdapterError('unsupported_adapter', 'lora_bias adapters are not supported');
  const pairs = new Map<string, { a?: string; b?: string; embedding: boolean }>();
  const savedModules: string[] = [];
  for (const key of weights.names()) {
    if (!key.startsWith(PEFT_PREFIX)) {
      throw new AdapterError('invalid_weights', `tensor ${key} does not start with ${PEFT_PREFIX}`);
    }
    const name = key.slice(PEFT_PREFIX.length);
    const lora = LORA_KEY.exec(name) ?? EMBEDDING_KEY.exec(name);
    if (lora) {
      const module = lora[1];
      const entry = pairs.get(module) ?? { embedding: lora[2].startsWith('lora_embedding') };
      if (lora[2].endsWith('A')) entry.a = key;
      else entry.b = key;
      pairs.set(module, entry);
      continue;
    }
    if (/\.lora_magnitude_vector(\.|$)/.test(name)) {
      throw new AdapterError('unsupported_adapter', `DoRA weights are not supported (${name})`, name);
    }
    if (/\.lora_[AB]\.bias$/.test(name)) {
      const module = name.replace(/\.lora_[AB]\.bias$/, '');
      throw new AdapterError('unsupported_adapter', `lora_bias is not supported (module ${module})`, module);
    }
    if (/\.lora_[A-Za-z_]+/.test(name)) {
      throw new AdapterError('unsupported_adapter', `unrecognised LoRA tensor ${name}`, name);
    }
    savedModules.push(name);
  }
  const modules: AdapterModule[] = [];
  for (const [module, pair] of [...pairs].sort(([x], [y]) => (x < y ? -1 : x > y ? 1 : 0))) {
    if (!pair.a || !pair.b) {
      throw new AdapterError(
        'invalid_weights',
        `module ${module} has lora_${pair.a ? 'A' : 'B'} but no lora_${pair.a ? 'B' : 'A'}`,
        module,
      );
    }
    const a = weights.info(pair.a).shape;
    const b = weights.info(pair.b).shape;
    if (a.length !== 2 || b.length !== 2) {
      throw new AdapterError(
        'unsupported_adapter',
        `module ${module}: only linear and embedding LoRA layers are supported (A ${JSON.stringify(a)}, B ${JSON.stringify(b)})`,
        module,
      );
    }
    const rank = a[0];
    if (b[1] !== rank) {
      throw new AdapterError(
        'invalid_weights',
        `module ${module}: lora_A is [${a}] but lora_B is [${b}]`,
        module,
      );
    }
    const expected = moduleScaling(config, module);
    if (expected.rank !== rank) {
      throw new AdapterError(
        'rank_mismatch',
        `module ${module}: rank ${rank} in the weights but ${expected.rank} in adapter_config.json`,
        module,
      );
    }
    modules.push({
      module,
      aKey: pair.a,
      bKey: pair.b,
      rank,
      inFeatures: a[1],
      outFeatures: b[0],
      scaling: expected.scaling,
      embedding: pair.embedding,
      fanInFanOut: config.fanInFanOut && !pair.embedding,
    });
  }
  if (modules.length === 0) throw new AdapterError('invalid_weights', 'the adapter has no LoRA modules');
  return { modules, savedModules };
}

/** The base weight shape a module's delta must match ([out, in], or [in, out] for embeddings/fan_in_fan_out). */
export function baseWeightShape(module: AdapterModule): [number, number] {
  return module.embedding || module.fanInFanOut
    ? [module.inFeatures, module.outFeatures]
    : [module.outFeatures, module.inFeatures];
}

/**
 * The base model's name for an adapter module: the module itself, or its other transformers spelling (a
 * transformers-5 ViT adapter names `vit.layers.0.attention.q_proj` what the checkpoint on disk calls
 * `vit.encoder.layer.0.attention.attention.query`). Undefined when the base holds neither.
 */
export function baseModuleName(module: string, base: Pick<Checkpoint, 'has'>): string | undefined {
  return moduleSpellings(module).find((name) => base.has(`${name}.weight`));
}

/** Checks that the base model has the weight of every LoRA module (under either naming) with the expected shape. */
export function checkAdapterAgainstBase(layout: AdapterLayout, base: Pick<Checkpoint, 'has' | 'info'>): void {
  for (const module of layout.modules) {
    const baseModule = baseModuleName(module.module, base);
    if (baseModule === undefined) {
      const [own, ...others] = moduleSpellings(module.module).map((name) => `${name}.weight`);
      const alsoTried = others.length > 0 ? ` (nor ${others.join(', ')})` : '';
      throw new AdapterError(
        'base_mismatch',
        `the base model has no ${own}${alsoTried} for LoRA module ${module.module}`,
        module.module,
      );
    }
    const key = `${baseModule}.weight`;
    const shape = base.info(key).shape;
    const expected = baseWeightShape(module);
    if (shape.length !== 2 || shape[0] !== expected[0] || shape[1] !== expected[1]) {
      throw new AdapterError(
        'base_mismatch',
        `LoRA module ${module.module} expects ${key} of shape [${expected}] but the base has [${shape}]`,
        module.module,
      );
    }
  }
}
