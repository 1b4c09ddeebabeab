// What a fine-tuning mode trains: the target modules, the variables (LoRA factors, heads or every weight) and how
// the model uses them.
import { ModelInputError } from '../errors.ts';
import * as tf from '@tensorflow/tfjs';
import type { LoadedModel } from '../load-model.ts';
import { initLoraFactors } from '../lora/lora-init.ts';
import type { LoraModule } from '../lora/lora-module.ts';
import { type AdapterNaming, toAdapterName } from '../lora/module-naming.ts';

export type FinetuneMode = 'lora' | 'llora' | 'full';

/** The trainable state of one fine-tuning run: the variables the optimizer updates and how the model uses them. */
export interface TrainableState {
  mode: FinetuneMode;
  /** key → variable: `lora.<module>.A` / `.B` for factors, the HF tensor name for heads and full weights. */
  variables: Map<string, tf.Variable>;
  lora: Map<string, LoraModule>;
  /** Head weights trained whole (PEFT modules_to_save), keyed like the model's params. */
  overrides: Map<string, tf.Tensor>;
  heads: string[];
  dispose(): void;
}

/** Linear modules selected by PEFT-style target names (a dotted suffix of the name, in either ViT naming). */
export function selectTargets(model: LoadedModel, targets: string[]): string[] {
  const heads = new Set(model.architecture.headModules(model.config));
  const modelType = model.config.model_type;
  const matches = (name: string, target: string) => name === target || name.endsWith(`.${target}`);
  const selected = model.architecture.linearModules(model.config).filter((module) => {
    if (heads.has(module) || !model.params.has(`${module}.weight`)) return false;
    const spellings = [module, toAdapterName(modelType, module, 'transformers5')];
    return targets.some((t) => spellings.some((s) => matches(s, t)));
  });
  if (selected.length === 0)
    throw new ModelInputError(`target modules ${targets.join(', ')} match no linear module`);
  return selected;
}

export const DEFAULT_TARGETS: Record<string, string[]> = {
  mlp: ['layers.0', 'layers.1', 'layers.2', 'layers.3'],
  vit: ['q_proj', 'v_proj'],
  bert: ['query', 'value'],
  clip_vision_model: ['q_proj', 'v_proj'],
};

/** target_modules as written to adapter_config.json: short names when they select exactly these modules. */
export function targetNamesFor(model: LoadedModel, modules: string[], naming: AdapterNaming): string[] {
  const names = modules.map((m) => toAdapterName(model.config.model_type, m, naming));
  const short = [...new Set(names.map((n) => n.slice(n.lastIndexOf('.') + 1)))].sort();
  try {
    const reselected = selectTargets(model, short);
    if (reselected.length === modules.length && reselected.every((m) => modules.includes(m))) return short;
  } catch {
    // fall through to full names
  }
  return names.sort();
}

/** What decides a run's trainable state; runtime worker threads get the same to mirror it (same seed, same A₀). */
export interface TrainableSpec {
  mode: FinetuneMode;
  targets: string[];
  rank: number;
  scale: number;
  seed: number;
  trainHead: boolean;
  /** Full mode: leave the head modules frozen (a task head trained through, not with). */
  frozenHead?: boolean;
}

export function createTrainableState(model: LoadedModel, options: TrainableSpec): TrainableState {
  const variables = new Map<string, tf.Variable>();
  const lora = new Map<string, LoraModule>();
  const overrides = new Map<string, tf.Tensor>();
  const extra: tf.Tensor[] = [];
  const heads = options.trainHead
    ? model.architecture.headModules(model.config).filter((m) => model.params.has(`${m}.weight`))
    : [];
  if (options.mode === 'full') {
    const frozen = new Set(
      options.frozenHead
        ? model.architecture.headModules(model.config).flatMap((m) => [`${m}.weight`, `${m}.bias`])
        : [],
    );
    for (const name of model.params.names()) {
      if (frozen.has(name)) continue;
      const variable = tf.variable(model.params.get(name), true);
      model.params.replace(name, variable);
      variables.set(name, variable);
    }
  } else {
    for (const module of options.targets) {
      const [inFeatures, outFeatures] = model.params.get(`${module}.weight`).shape;
      const init = initLoraFactors(module, inFeatures, outFeatures, options.rank, options.seed);
      const a0T = tf.tidy(() => tf.transpose(tf.tensor2d(init.a, [options.rank, inFeatures]))) as tf.Tensor2D;
      const zeros = tf.zeros([options.rank, outFeatures]);
      const bT = tf.variable(zeros, true) as tf.Variable<tf.Rank.R2>;
      zeros.dispose(); // the variable holds its own reference
      variables.set(`lora.${module}.B`, bT);
      const entry: LoraModule = {
        module,
        rank: options.rank,
        scale: options.scale,
        aT: a0T,
        bT,
        linearized: false,
      };
      if (options.mode === 'lora') {
        const aT = tf.variable(a0T, true) as tf.Variable<tf.Rank.R2>;
        variables.set(`lora.${module}.A`, aT);
        entry.aT = aT;
        extra.push(a0T);
      } else {
        // L-LoRA around (A₀, B₀ = 0): h = W₀x + s·B·A₀·x; A's gradient is exactly zero, so A is not trained.
        entry.linearized = true;
        entry.a0T = a0T;
        entry.b0T = tf.zeros([options.rank, outFeatures]) as tf.Tensor2D;
        entry.b0IsZero = true;
      }
      lora.set(module, entry);
    }
    for (const module of heads) {
      for (const name of [`${module}.weight`, `${module}.bias`]) {
        if (!model.params.has(name)) continue;
        const variable = tf.variable(model.params.get(name), true);
        overrides.set(name, variable);
        variables.set(name, variable);
      }
    }
  }
  return {
    mode: options.mode,
    variables,
    lora,
    overrides,
    heads,
    dispose() {
      for (const t of extra) t.dispose();
      for (const m of lora.values()) for (const t of [m.aT, m.bT, m.a0T, m.b0T]) t?.dispose();
      for (const t of overrides.values()) t.dispose();
    },
  };
}
