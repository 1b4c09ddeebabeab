// Limits on every JSON text the service reads (config.json, adapter_config.json, lorafuse.json, shard
// indexes, safetensors metadata values, recipes): a size cap and a nesting-depth cap checked by a
// linear scan before JSON.parse, so hostile nesting is a typed error instead of a stack overflow
// (RangeError) deep inside whatever walks the parsed value later.

/** Nesting deeper than any real config (HF configs nest 3–4 levels). Same cap as safetensors headers. */
export const MAX_JSON_DEPTH = 64;
/** Largest JSON side file (config.json of the largest HF models is a few KiB; indexes a few MiB). */
export const MAX_JSON_BYTES = 16 * 1024 * 1024;

export interface JsonLimits {
  maxDepth: number;
  /** In UTF-16 code units of the decoded text (≤ its UTF-8 bytes). */
  maxBytes: number;
}

export const DEFAULT_JSON_LIMITS: JsonLimits = { maxDepth: MAX_JSON_DEPTH, maxBytes: MAX_JSON_BYTES };

/** A JSON text over a limit; `limit` says which. */
export class JsonLimitError extends Error {
  constructor(
    readonly limit: 'depth' | 'size',
    message: string,
  ) {
    super(message);
    this.name = 'JsonLimitError';
  }
}

/**
 * The deepest nesting of arrays and objects in a JSON text, ignoring brackets inside strings. Linear,
 * no recursion; stops counting once `stopAbove` is exceeded. Malformed text is left to JSON.parse.
 */
export function jsonNestingDepth(text: string, stopAbove = Number.POSITIVE_INFINITY): number {
  let depth = 0;
  let deepest = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === 0x5c)
        i++; // skip the escaped character
      else if (c === 0x22) inString = false;
      continue;
    }
    if (c === 0x22) inString = true;
    else if (c === 0x5b || c === 0x7b) {
      depth++;
      if (depth > deepest) {
        deepest = depth;
        if (deepest > stopAbove) return deepest;
      }
    } else if (c === 0x5d || c === 0x7d) depth--;
  }
  return deepest;
}

/** Throws JsonLimitError when `text` is over the size or depth limit. */
export function checkJsonLimits(text: string, limits: JsonLimits = DEFAULT_JSON_LIMITS): void {
  if (text.length > limits.maxBytes) {
    throw new JsonLimitError(
      'size',
      `JSON text of ${text.length} characters is over the ${limits.maxBytes} limit`,
    );
  }
  if (jsonNestingDepth(text, limits.maxDepth) > limits.maxDepth) {
    throw new JsonLimitError('depth', `JSON nested deeper than ${limits.maxDepth} levels`);
  }
}

/** JSON.parse within the limits (JsonLimitError) ; syntax errors stay JSON.parse's SyntaxError. */
export function parseBoundedJson(text: string, limits: JsonLimits = DEFAULT_JSON_LIMITS): unknown {
  checkJsonLimits(text, limits);
  return JSON.parse(text);
}

/** The nesting depth of an already parsed value (YAML, a request body), iteratively; stops past `stopAbove`. */
export function valueNestingDepth(value: unknown, stopAbove = Number.POSITIVE_INFINITY): number {
  let deepest = 0;
  const stack: Array<[unknown, number]> = [[value, 0]];
  const seen = new Set<object>();
  while (stack.length > 0) {
    const [item, depth] = stack.pop()!;
    if (item === null || typeof item !== 'object') continue;
    // YAML aliases share nodes: each is walked once (the alias-count cap bounds the rest).
    if (seen.has(item)) continue;
    seen.add(item);
    const level = depth + 1;
    if (level > deepest) {
      deepest = level;
      if (deepest > stopAbove) return deepest;
    }
    for (const child of Array.isArray(item) ? item : Object.values(item)) stack.push([child, level]);
  }
  return deepest;
}
