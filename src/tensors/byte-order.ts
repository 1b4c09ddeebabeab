// safetensors data are little-endian; on a big-endian host every multi-byte element is swapped.

import { endianness } from 'node:os';

export const HOST_IS_LITTLE_ENDIAN = endianness() === 'LE';

/** Reverses the bytes of each `elementSize`-byte element in place. */
export function swapBytesInPlace(bytes: Uint8Array, elementSize: number): void {
  if (elementSize === 1) return;
  for (let i = 0; i < bytes.length; i += elementSize) {
    for (let lo = i, hi = i + elementSize - 1; lo < hi; lo++, hi--) {
      const tmp = bytes[lo];
      bytes[lo] = bytes[hi];
      bytes[hi] = tmp;
    }
  }
}
