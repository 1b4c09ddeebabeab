// Which layer a tensor belongs to, and the gradient position t mergekit gives it (plan.py):
// layer idx of n gets t = idx/(n-1) (1 when n = 1); every non-layer tensor (embeddings, final norm,
// lm_head, heads) gets t = 0, the first value of every gradient, even those after the last layer.

// Layer-index patterns, first match wins, each needing `.N.` right after the container name:
//   model.layers.N.            Llama, Mistral, Qwen (and PEFT's base_model.model.model.layers.N.)
//   encoder.layer.N.           BERT, ViT (HF: bert.encoder.layer.N., vit.encoder.layer.N.)
//   vit.layers.N. / *.layers.N. any other `layers.N.` container (CLIP's encoder.layers.N.)
//   transformer.h.N.           GPT-2, Falcon
//   blocks.N.                  timm-style blocks
const LAYER_PATTERN = /(?:^|\.)(?:layers|layer|h|blocks)\.(\d+)\./;

export function layerIndexOf(tensorName: string): number | undefined {
  const match = LAYER_PATTERN.exec(tensorName);
  return match ? Number(match[1]) : undefined;
}

/** num_hidden_layers from config.json (or text_config/vision_config), else 1 + the largest index in the names. */
export function countLayers(config: Record<string, unknown> | undefined, names: Iterable<string>): number {
  const fromConfig = readLayerCount(config);
  if (fromConfig !== undefined) return fromConfig;
  let largest = -1;
  for (const name of names) {
    const idx = layerIndexOf(name);
    if (idx !== undefined && idx > largest) largest = idx;
  }
  return largest + 1;
}

function readLayerCount(config: Record<string, unknown> | undefined): number | undefined {
  if (!config) return undefined;
  for (const key of ['num_hidden_layers', 'n_layer', 'num_layers']) {
    const value = config[key];
    if (typeof value === 'number' && Number.isSafeInteger(value) && value > 0) return value;
  }
  for (const nested of ['text_config', 'vision_config']) {
    const inner = config[nested];
    if (inner && typeof inner === 'object') {
      const value = readLayerCount(inner as Record<string, unknown>);
      if (value !== undefined) return value;
    }
  }
  return undefined;
}

/** The gradient position of a tensor; layers past the counted ones are held at t = 1. */
export function gradientPosition(tensorName: string, layerCount: number): number {
  const idx = layerIndexOf(tensorName);
  if (idx === undefined) return 0;
  if (layerCount <= 1) return 1;
  return Math.min(1, idx / (layerCount - 1));
}
