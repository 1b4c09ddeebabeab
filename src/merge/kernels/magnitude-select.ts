// Exact top-k by magnitude without sorting: a two-pass radix select on the bits of |x| (for
// non-negative floats the IEEE bit pattern orders like the value), then one marking pass. Exactly
// k entries are marked; ties at the cutoff go to the lower (or higher) indices, deterministically.

// One histogram per thread, reused: 2^16 bins over the high, then the low half of the key.
const histogram = new Uint32Array(65536);

export type TieBreak = 'lower-index' | 'higher-index';

/** The cutoff key and how many entries equal to it are still selected (radix select, two 16-bit passes). */
function selectThreshold(
  bits: Uint32Array,
  k: number,
  flip: number,
): { threshold: number; tiesLeft: number } {
  const n = bits.length;
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
  return { threshold: ((high << 16) | low) >>> 0, tiesLeft: k - above };
}

/**
 * Marks (sets to 1) the `k` entries of `values` with the largest |x| in `mask` (others untouched);
 * with `smallest`, the k smallest |x| instead.
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
  const { threshold, tiesLeft: ties } = selectThreshold(bits, k, flip);
  let tiesLeft = ties;
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

/** Zeroes every entry but the k largest |x| in place (ties to the lower index); no mask needed. */
export function keepLargestMagnitudes(values: Float32Array, k: number): void {
  const n = values.length;
  if (k >= n) return;
  if (k <= 0) {
    values.fill(0);
    return;
  }
  const bits = new Uint32Array(values.buffer, values.byteOffset, n);
  const { threshold, tiesLeft: ties } = selectThreshold(bits, k, 0);
  let tiesLeft = ties;
  for (let i = 0; i < n; i++) {
    const key = bits[i] & 0x7fffffff;
    if (key > threshold) continue;
    if (key === threshold && tiesLeft > 0) tiesLeft--;
    else values[i] = 0;
  }
}
