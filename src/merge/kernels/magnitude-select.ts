// Exact top-k by magnitude without sorting: a two-pass radix select on the bits of |x| (for
// non-negative floats the IEEE bit pattern orders like the value), then one marking pass. Exactly
// k entries are marked; ties at the cutoff go to the lower (or higher) indices, deterministically.

// One histogram per thread, reused: 2^16 bins over the high, then the low half of the key.
const histogram = new Uint32Array(65536);

export type TieBreak = 'lower-index' | 'higher-index';

/**
 * Marks (sets to 1) the `k` entries of `values` with the largest |x| in `mask` (others untouched when
 * `smallest` is false); with `smallest`, the k smallest |x| instead.
 */
export function markByMagnitude(
  values: Float32Array,
  k: number,
  mask: Uint8Array,
  options: { smallest?: boolean; ties?: TieBreak } = {},
): void {
  const n = values.length;
  if (k <= 0) return;
  if (k >= n) {
    mask.fill(1, 0, n);
    return;
  }
  const bits = new Uint32Array(values.buffer, values.byteOffset, n);
  // Keys order like |x| (or like -|x| for the smallest): the selection is always "largest keys".
  const flip = options.smallest ? 0x7fffffff : 0;
  histogram.fill(0);
  for (let i = 0; i < n; i++) histogram[((bits[i] & 0x7fffffff) ^ flip) >>> 16]++;
  let above = 0;
  let high = 65535;
  while (above + histogram[high] < k) above += histogram[high--];
  histogram.fill(0);
  for (let i = 0; i < n; i++) {
    const key = (bits[i] & 0x7fffffff) ^ flip;
    if (key >>> 16 === high) histogram[key & 0xffff]++;
  }
  let low = 65535;
  while (above + histogram[low] < k) above += histogram[low--];
  const threshold = ((high << 16) | low) >>> 0;
  let tiesLeft = k - above;
  if (options.ties === 'higher-index') {
    for (let i = n - 1; i >= 0; i--) {
      const key = (bits[i] & 0x7fffffff) ^ flip;
      if (key > threshold) mask[i] = 1;
      else if (key === threshold && tiesLeft > 0) {
        mask[i] = 1;
        tiesLeft--;
      }
    }
    return;
  }
  for (let i = 0; i < n; i++) {
    const key = (bits[i] & 0x7fffffff) ^ flip;
    if (key > threshold) mask[i] = 1;
    else if (key === threshold && tiesLeft > 0) {
      mask[i] = 1;
      tiesLeft--;
    }
  }
}
