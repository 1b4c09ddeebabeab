// Reusable float32 work buffers: a merge allocates its largest working set once instead of per
// tensor (the JS heap would otherwise churn hundreds of MB per large tensor). Callers must finish
// with a buffer before asking for the same slot again; merges are synchronous, so this holds per thread.
const slots: Float32Array[] = [];
const maskSlots: Uint8Array[] = [];
// Larger buffers are allocated per use and left to the GC: caching them would pin hundreds of MB
// per thread (per worker) between the few tensors that large.
const CACHE_LIMIT = 4 * 1024 * 1024;

export function scratchFloat32(slot: number, length: number): Float32Array {
  if (length > CACHE_LIMIT) return new Float32Array(length);
  let buffer = slots[slot];
  if (!buffer || buffer.length < length) {
    buffer = new Float32Array(length);
    slots[slot] = buffer;
  }
  return buffer.subarray(0, length);
}

export function scratchMask(slot: number, length: number): Uint8Array {
  if (length > CACHE_LIMIT) return new Uint8Array(length);
  let buffer = maskSlots[slot];
  if (!buffer || buffer.length < length) {
    buffer = new Uint8Array(length);
    maskSlots[slot] = buffer;
  }
  return buffer.subarray(0, length);
}

/** Drops every buffer (after a merge, so an idle worker does not hold its peak memory). */
export function releaseScratch(): void {
  slots.length = 0;
  maskSlots.length = 0;
}
